/**
 * The dialling half of a restore (SPEC §3.1): for an endpoint whose role at checkpoint was
 * connect and whose peer now runs on another node, open the data connection to that node's
 * agent, offer it on the session with that agent (peer-session.ts), and once it is accepted
 * write the peer's drained bytes back and put the recorded state on the socket. A refusal
 * that a moment can cure (placement not there yet, endpoint not registered yet) and an agent
 * not up yet are retried with backoff until the restore's deadline; the rest end the endpoint
 * at once. At most `dialConcurrency` dials run together; one session per peer agent carries
 * all their offers.
 */
import { isIPv6 } from 'node:net';

import { close, connect, encodeSockAddr, send, socket, type SockAddr } from '../../ffi/index.ts';
import type { AgentConfig } from '../config/types.ts';
import { RewireError, SyscallError } from '../errors.ts';
import type { EndpointId, NodeInfo } from '../model/types.ts';
import type { PlacementStore } from '../placement/store.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { FrameChannel } from '../wire/channel.ts';
import { ticketOpening, TICKET_BYTES } from '../wire/opening.ts';
import { sendAll } from '../wire/stream.ts';
import {
  connectToAgent,
  expectAfterProof,
  greetAcceptor,
  type HandshakeContext,
} from './peer-handshake.ts';
import { DialerSession } from './peer-session.ts';
import { failureOutcome, type EndpointTask, type Outcome } from './restore.ts';
import { Semaphore } from './semaphore.ts';
import {
  applyBeforeBind,
  describeReport,
  finishSocketState,
  growSendBuffer,
  towardPeer,
} from './socket-state.ts';

/** Where an endpoint's peer is now: its (possibly replaced) id and its node. */
export interface PeerNow {
  id: EndpointId;
  node: bigint;
}

export interface DialContext {
  config: AgentConfig;
  placement: PlacementStore;
  reactor: Reactor;
  hs: HandshakeContext;
  /** An offer was answered, with the seconds it took and the answer (accepted, refused). */
  onHandshake?: (seconds: number, result: string) => void;
  /** A session with the agent of `node` opened. */
  onSession?: (side: 'dialed', node: bigint) => void;
}

/** One dial attempt: a final outcome, or a problem (with its code) worth another try. */
interface DialAttempt {
  outcome?: Outcome;
  problem: string;
  code: string;
}

/**
 * Refusal codes after which the dialer tries again, until its deadline: the acceptor's agent
 * may get the same placement, or its process may register, a moment later.
 */
const RETRYABLE = new Set(['EPLACEMENT_MISMATCH', 'EUNKNOWN_ENDPOINT']);

export class Dialer {
  readonly #slots: Semaphore;
  /** Open (or opening) sessions by node id and address. */
  readonly #sessions = new Map<string, Promise<DialerSession>>();
  readonly #addresses = new Map<string, { buf: Uint8Array; len: number }>();
  /** The open session by node, found without waiting (the common case). */
  readonly #open = new Map<bigint, DialerSession>();

  constructor(readonly ctx: DialContext) {
    this.#slots = new Semaphore(ctx.config.dialConcurrency);
  }

  /** Dials until the endpoint is restored, refused for good, or its restore's deadline. */
  async dial(task: EndpointTask, peer: PeerNow): Promise<void> {
    const release = await this.#slots.acquire();
    try {
      const outcome = await this.#dialUntilDeadline(task, peer);
      task.settle(outcome);
    } catch (err) {
      task.settle(failureOutcome(err, 'EPEER_UNREACHABLE'));
    } finally {
      release();
    }
  }

  /** The sockaddr bytes of an agent's address, made once per address. */
  #encodedAddress(address: SockAddr & { address: string; port: number }): {
    buf: Uint8Array;
    len: number;
  } {
    const key = `${address.address}|${address.port}`;
    let encoded = this.#addresses.get(key);
    if (!encoded) this.#addresses.set(key, (encoded = encodeSockAddr(address)));
    return encoded;
  }

  /** Closes every session; offers waiting on them fail. */
  stop(): void {
    for (const opening of this.#sessions.values()) {
      opening.then((s) => s.close('this agent is stopping')).catch(() => {});
    }
    this.#sessions.clear();
    this.#open.clear();
  }

  async #dialUntilDeadline(task: EndpointTask, peer: PeerNow): Promise<Outcome> {
    const node = this.ctx.placement.node(peer.node);
    if (!node) {
      return {
        state: 'failed',
        code: 'ENODE_UNKNOWN',
        message: `Placement has no address for node '${peer.node}'`,
      };
    }
    let backoff = 25;
    for (;;) {
      if (task.settled) return { state: 'failed', code: 'ECANCELLED', message: 'Restore ended' };
      const attempt = await this.#dialOnce(task, peer, node);
      if (attempt.outcome) return attempt.outcome;
      // A wait cut short by the restore deadline says less than the refusal seen before it.
      if (attempt.code !== 'EDEADLINE' || task.lastCode === undefined) {
        task.lastProblem = `node '${peer.node}' at ${node.address}:${node.port}: ${attempt.problem}`;
        task.lastCode = attempt.code === 'EDEADLINE' ? 'EPEER_UNREACHABLE' : attempt.code;
      }
      const wait = Math.min(backoff, task.restore.deadline - Date.now());
      if (wait <= 0) {
        const message = `Gave up at the restore deadline; ${task.lastProblem}`;
        return { state: 'failed', code: task.lastCode!, message };
      }
      await Bun.sleep(wait);
      backoff = Math.min(backoff * 2, 1000);
    }
  }

  /** The session with the agent of `node`, opened (and authenticated) when there is none. */
  async #session(node: NodeInfo, deadline: number): Promise<DialerSession> {
    const key = `${node.nodeId}@${node.address}:${node.port}`;
    for (;;) {
      let opening = this.#sessions.get(key);
      if (!opening) {
        const fresh = this.#openSession(node, deadline);
        fresh.catch(() => {
          if (this.#sessions.get(key) === fresh) this.#sessions.delete(key);
        });
        this.#sessions.set(key, fresh);
        opening = fresh;
      }
      // Every dial waiting on a session that cannot be opened gets its error.
      const session = await opening;
      if (!session.closed) return session;
      if (this.#sessions.get(key) === opening) this.#sessions.delete(key);
    }
  }

  async #openSession(node: NodeInfo, deadline: number): Promise<DialerSession> {
    const { reactor, config } = this.ctx;
    const connectDeadline = Math.min(deadline, Date.now() + config.deadlines.connectMs);
    const fd = await connectToAgent(reactor, node, connectDeadline);
    const ch = new FrameChannel(reactor, fd, config.maxFrameBytes, config.deadlines.handshakeMs);
    try {
      const acceptorNode = await greetAcceptor(this.ctx.hs, ch, 'join', deadline);
      await expectAfterProof(ch, ['joined'], acceptorNode, deadline);
    } catch (err) {
      reactor.forget(fd);
      close(fd);
      throw err;
    }
    this.ctx.onSession?.('dialed', node.nodeId);
    return new DialerSession(ch, node.nodeId, `${node.address}|${node.port}`);
  }

  /** One attempt: a data connection offered on the session; an outcome, or a retryable problem. */
  async #dialOnce(task: EndpointTask, peer: PeerNow, node: NodeInfo): Promise<DialAttempt> {
    // The acceptor may hold an offer for up to its own handshake deadline while its process
    // registers, so the dialer waits twice as long for the answer.
    const deadline = Math.min(
      task.restore.deadline,
      Date.now() + 2 * this.ctx.config.deadlines.handshakeMs,
    );
    let session = this.#open.get(node.nodeId);
    if (!session || session.closed || !sameAddress(session, node)) {
      try {
        session = await this.#session(node, deadline);
      } catch (err) {
        return classifyDialError(err, peer.node);
      }
      this.#open.set(node.nodeId, session);
    }
    const family = isIPv6(node.address) ? 'inet6' : 'inet';
    const fd = socket(family, 'stream', { nonblock: true });
    let handed = false;
    try {
      const early = applyBeforeBind(fd, task.endpoint, family);
      const connectDeadline = Math.min(deadline, Date.now() + this.ctx.config.deadlines.connectMs);
      // A connect in progress is not waited for: the record's send waits for room to write,
      // which comes when the connection is up (on loopback it already is), and a refused
      // connection surfaces as that send's error.
      const address = { family, address: node.address, port: node.port } as const;
      connect(fd, address, this.#encodedAddress(address));
      const ticket = crypto.getRandomValues(new Uint8Array(TICKET_BYTES));
      const record = ticketOpening(ticket);
      const rest = sendAll(this.ctx.reactor, fd, record, connectDeadline, 'the connection record');
      if (rest) await rest;
      const started = performance.now();
      const answer = await session.offer(
        {
          ticket,
          from: task.endpoint.id,
          to: peer.id,
          placementVersion: this.ctx.placement.version,
          drained: task.endpoint.drained,
        },
        deadline,
      );
      this.ctx.onHandshake?.(
        (performance.now() - started) / 1000,
        answer.accepted ? 'accepted' : 'refused',
      );
      if (answer.refused) {
        const { code, message } = answer.refused;
        const problem = `refused by node '${peer.node}': ${message}`;
        if (RETRYABLE.has(code)) return { problem, code };
        return { problem, code, outcome: { state: 'failed', code, message: problem } };
      }
      const refill = towardPeer(answer.accepted.drained, task.endpoint);
      if (refill.length > 0) {
        growSendBuffer(fd, refill.length);
        const rest = sendAll(this.ctx.reactor, fd, refill, deadline, 'drained bytes');
        if (rest) await rest;
      }
      const report = finishSocketState(fd, task.endpoint, family, task.pids(), early);
      handed = true;
      return {
        problem: '',
        code: '',
        outcome: {
          state: 'live',
          how: 'remote',
          fd,
          peer: peer.id,
          peerNode: peer.node,
          message: describeReport(report),
        },
      };
    } catch (err) {
      return classifyDialError(err, peer.node);
    } finally {
      this.ctx.reactor.forget(fd);
      if (!handed) close(fd);
    }
  }
}

/** Whether `session` was opened with `node`'s current address. */
function sameAddress(session: DialerSession, node: NodeInfo): boolean {
  return session.address === `${node.address}|${node.port}`;
}

/** Errors that mean the TCP connection to the peer agent was never made. */
const CONNECT_ERRNOS = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Codes after which another dial cannot help. */
const FINAL_DIAL_CODES = new Set([
  'EAUTH',
  'EPEER_AGENT_LOST',
  'EPROTOCOL',
  'EFRAME',
  'EFRAME_TOO_LARGE',
]);

/**
 * How a failed dial attempt ends: a final outcome, or a problem worth another try before the
 * deadline (the peer agent not up yet, a timeout).
 */
function classifyDialError(err: unknown, node: bigint): DialAttempt {
  const message = (err as Error).message;
  const errno = err instanceof SyscallError ? err.errnoName : undefined;
  // The connect is not waited for: its failure shows on the first send.
  if (errno !== undefined && CONNECT_ERRNOS.has(errno)) {
    return { problem: `connect: ${errno}`, code: 'EPEER_UNREACHABLE' };
  }
  const lost = errno === 'ECONNRESET' || errno === 'EPIPE';
  const code = lost
    ? 'EPEER_AGENT_LOST'
    : err instanceof RewireError && !errno
      ? err.code
      : 'EPEER_UNREACHABLE';
  // DeadlineError (EDEADLINE) stays as it is: the caller tells a timeout from a refusal.
  if (!FINAL_DIAL_CODES.has(code)) return { problem: message, code };
  return {
    problem: message,
    code,
    outcome: { state: 'failed', code, message: `Node '${node}': ${message}` },
  };
}
