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
import { peerWentAway, sendAll } from '../wire/stream.ts';
import {
  connectToAgent,
  expectAfterProof,
  greetAcceptor,
  HANDSHAKE_FRAME_BYTES,
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
 * may get the same placement, or its process may register, a moment later; a data connection
 * that did not arrive or broke is made again.
 */
const RETRYABLE = new Set(['EPLACEMENT_MISMATCH', 'EUNKNOWN_ENDPOINT', 'EDATA_CONNECTION']);

export class Dialer {
  readonly #slots: Semaphore;
  /** Sessions by node and address: open, or the promise of one being opened. */
  readonly #sessions = new Map<string, DialerSession | Promise<DialerSession>>();
  readonly #addresses = new Map<string, { buf: Uint8Array; len: number }>();
  #stopped = false;

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

  /** Closes every session and opens no more; offers waiting on them fail. */
  stop(): void {
    this.#stopped = true;
    for (const s of this.#sessions.values()) {
      if (s instanceof DialerSession) s.close('this agent is stopping');
      else s.then((opened) => opened.close('this agent is stopping')).catch(() => {});
    }
    this.#sessions.clear();
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

  /**
   * The open session with the agent of `node` (without waiting, in the common case), opened
   * and authenticated when there is none. Every dial waiting on a session that cannot be
   * opened gets its error.
   */
  #session(node: NodeInfo, deadline: number): DialerSession | Promise<DialerSession> {
    const key = `${node.nodeId}@${node.address}|${node.port}`;
    const known = this.#sessions.get(key);
    if (known instanceof DialerSession && !known.closed) return known;
    if (known !== undefined && !(known instanceof DialerSession)) return known;
    if (this.#stopped) {
      return Promise.reject(new RewireError('ESHUTDOWN', 'This agent is stopping'));
    }
    const opening = this.#openSession(node, deadline).then(
      (session) => {
        if (this.#sessions.get(key) === opening) this.#sessions.set(key, session);
        return session;
      },
      (err: unknown) => {
        if (this.#sessions.get(key) === opening) this.#sessions.delete(key);
        throw err;
      },
    );
    this.#sessions.set(key, opening);
    return opening;
  }

  async #openSession(node: NodeInfo, deadline: number): Promise<DialerSession> {
    const { reactor, config } = this.ctx;
    const where = `${node.address}:${node.port}`;
    const connectDeadline = Math.min(deadline, Date.now() + config.deadlines.connectMs);
    const fd = await connectToAgent(reactor, node, connectDeadline);
    const ch = new FrameChannel(reactor, fd, HANDSHAKE_FRAME_BYTES, config.deadlines.handshakeMs);
    let acceptorNode: bigint | undefined;
    try {
      acceptorNode = await greetAcceptor(this.ctx.hs, ch, 'join', deadline);
      if (acceptorNode !== node.nodeId) {
        throw new RewireError(
          'ENODE_MISMATCH',
          `The agent at ${where} is node '${acceptorNode}', not node '${node.nodeId}': the placement's address for node '${node.nodeId}' is wrong`,
        );
      }
      await expectAfterProof(ch, ['joined'], acceptorNode, deadline);
    } catch (err) {
      ch.fail(err as Error);
      close(fd);
      // Before the acceptor proved the key, a reset or a close means its agent went away
      // (stopping, restarting): worth another try, unlike a rejected proof.
      if (acceptorNode === undefined && peerWentAway(err)) {
        throw new RewireError(
          'EPEER_UNREACHABLE',
          `The agent at ${where} closed the connection before proving the cluster key: it is stopping or restarting`,
          { cause: err },
        );
      }
      throw err;
    }
    this.ctx.onSession?.('dialed', node.nodeId);
    return new DialerSession(ch, node.nodeId);
  }

  /** One attempt: a data connection offered on the session; an outcome, or a retryable problem. */
  async #dialOnce(task: EndpointTask, peer: PeerNow, node: NodeInfo): Promise<DialAttempt> {
    // The acceptor may hold an offer for up to its own handshake deadline while its process
    // registers, so the dialer waits twice as long for the answer.
    const deadline = Math.min(
      task.restore.deadline,
      Date.now() + 2 * this.ctx.config.deadlines.handshakeMs,
    );
    if (deadline <= Date.now()) {
      return { problem: 'the restore deadline passed', code: 'EDEADLINE' };
    }
    let session: DialerSession;
    try {
      const found = this.#session(node, deadline);
      session = found instanceof DialerSession ? found : await found;
    } catch (err) {
      return classifyDialError(err, peer.node);
    }
    const family = isIPv6(node.address) ? 'inet6' : 'inet';
    const fd = socket(family, 'stream', { nonblock: true });
    const unhold = session.hold();
    let handed = false;
    let accepted = false;
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
      const offered = session.offer(
        {
          ticket,
          from: task.endpoint.id,
          to: peer.id,
          placementVersion: this.ctx.placement.version,
          drained: task.endpoint.drained,
          waitMs: Math.max(0, deadline - Date.now()),
        },
        deadline,
      );
      unhold();
      const answer = await offered;
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
      // The acceptor handed its end on: from here a failure is final, another dial would
      // find nobody waiting.
      accepted = true;
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
      const attempt = classifyDialError(err, peer.node);
      if (!accepted || attempt.outcome) return attempt;
      const message = `Node '${peer.node}' accepted the connection, then: ${attempt.problem}`;
      return { ...attempt, outcome: { state: 'failed', code: attempt.code, message } };
    } finally {
      unhold();
      this.ctx.reactor.forget(fd);
      if (!handed) close(fd);
    }
  }
}

/** Errors that mean the TCP connection to the peer agent was never made. */
const CONNECT_ERRNOS = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Codes after which another dial cannot help. */
const FINAL_DIAL_CODES = new Set([
  'EAUTH',
  'ENODE_MISMATCH',
  'ESHUTDOWN',
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
