/**
 * The accepting half of a restore (SPEC §3.1, §3.4): the peer listener, the acceptor's side
 * of sessions (peer-session.ts), and the matching of each offered connection to the endpoint
 * waiting for it. A data connection and its offer may arrive in either order, and the offer
 * before its endpoint registers; each waits until the handshake deadline, and never past the
 * time the dialer said it waits. A data connection is taken only from an address with an
 * authenticated session. A changed peer is accepted only when the placement explains it;
 * every refusal names the reason to the dialer and is kept on the waiting endpoint, which
 * reports it if its deadline passes. A dialer that fails authentication, and a connection
 * that does not open with a rewire record, are reset without a word.
 */
import { isIPv6 } from 'node:net';

import {
  acceptFd,
  bind,
  close,
  getPeerName,
  getSockName,
  listen,
  MSG,
  recv,
  setIntOption,
  setLinger,
  socket,
} from '../../ffi/index.ts';
import type { AgentConfig } from '../config/types.ts';
import { ProtocolError, RewireError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { decodePeerFrame, encodePeerFrame } from '../model/codec.ts';
import type { Offer } from '../model/frames.ts';
import { endpointKey, processKey, sameEndpoint, sameProcess } from '../model/ids.ts';
import type { EndpointId, Manifest } from '../model/types.ts';
import type { PlacementStore } from '../placement/store.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { FrameChannel } from '../wire/channel.ts';
import { ticketKey } from '../wire/opening.ts';
import { peerWentAway, readOpening, sendAll } from '../wire/stream.ts';
import {
  acceptorHandshake,
  HANDSHAKE_FRAME_BYTES,
  type HandshakeContext,
} from './peer-handshake.ts';
import { AcceptorSession, ANSWER_MARGIN_MS } from './peer-session.ts';
import { Rendezvous } from './rendezvous.ts';
import type { EndpointTask } from './restore.ts';
import {
  describeReport,
  finishSocketState,
  growSendBuffer,
  towardPeer,
  type StateReport,
} from './socket-state.ts';

export interface AcceptContext {
  config: AgentConfig;
  placement: PlacementStore;
  reactor: Reactor;
  hs: HandshakeContext;
  log: Logger;
  /** A peer agent asked for this node's captures (the cluster map): the manifests to send. */
  onQuery?: (node: bigint) => Promise<Manifest[]>;
  /** A session with the agent of `node` opened. */
  onSession?: (side: 'accepted', node: bigint) => void;
}

/** Data connections held for offers not yet seen, at most (strangers cannot pile up fds). */
const MAX_HELD_CONNECTIONS = 65_536;
/** Offers one session may have outstanding, at most. */
const MAX_OUTSTANDING_OFFERS = 1 << 20;

export class Acceptor {
  readonly #awaiting = new Map<string, EndpointTask>();
  readonly #early = new Map<string, Array<() => void>>();
  readonly #sessions = new Set<AcceptorSession>();
  /** How many sessions each dialing agent's address has open. */
  readonly #sessionAddresses = new Map<string, number>();
  /** Tickets of the offers being matched. */
  readonly #offered = new Set<string>();
  /** Data connections by ticket, meeting the offers that name them. */
  readonly #tickets: Rendezvous<number>;
  #listenFd = -1;
  #stopped = false;

  constructor(readonly ctx: AcceptContext) {
    this.#tickets = new Rendezvous((fd) => this.#reset(fd), MAX_HELD_CONNECTIONS);
  }

  /** Binds the peer listener and starts accepting other agents. Returns the bound port. */
  listen(): number {
    const { address, port } = this.ctx.config.listen;
    const family = isIPv6(address) ? 'inet6' : 'inet';
    const fd = socket(family, 'stream', { nonblock: true });
    try {
      // Restored connections that came in through this port keep it as their local port
      // while their processes run: a restarted agent must be able to listen on it again.
      setIntOption(fd, 'SO_REUSEADDR', 1);
      bind(fd, { family, address, port });
      // Every connection to this port starts with the dialer's opening record: the kernel
      // hands a connection over only once its first bytes are in, so one recv reads the record.
      setIntOption(fd, 'TCP_DEFER_ACCEPT', Math.ceil(this.ctx.config.deadlines.handshakeMs / 1000));
      listen(fd, 4096);
    } catch (err) {
      close(fd);
      const message = `Cannot listen for peer agents on ${address}:${port}: ${(err as Error).message}`;
      throw new RewireError('ELISTEN', message, { cause: err });
    }
    this.#listenFd = fd;
    void this.#acceptLoop(fd);
    const bound = getSockName(fd);
    return bound.family === 'unix' ? 0 : bound.port;
  }

  stop(): void {
    this.#stopped = true;
    // Failing a session ends its pending read, whose loop then closes the fd.
    for (const session of this.#sessions) session.ch.fail(new Error('this agent is stopping'));
    this.#tickets.clear('this agent is stopping');
    if (this.#listenFd < 0) return;
    this.ctx.reactor.forget(this.#listenFd);
    close(this.#listenFd);
    this.#listenFd = -1;
  }

  /** `task` waits for its peer to dial in; an offer held for it is released now. */
  expect(task: EndpointTask): void {
    this.#awaiting.set(task.key, task);
    for (const wake of this.#early.get(task.key) ?? []) wake();
    this.#early.delete(task.key);
  }

  /** Whether `task` is waiting for its peer to dial in. */
  isExpecting(task: EndpointTask): boolean {
    return this.#awaiting.get(task.key) === task;
  }

  /** `task` no longer waits (it settled, or its restore ended). */
  unexpect(task: EndpointTask): void {
    if (this.#awaiting.get(task.key) === task) this.#awaiting.delete(task.key);
  }

  /**
   * Accepts peer connections. The listening socket is watched one-shot: a burst of data
   * connections is taken in batches, here and whenever offers arrive (`#acceptWaiting`),
   * instead of with a wake-up each.
   */
  async #acceptLoop(listenFd: number): Promise<void> {
    this.ctx.reactor.watchOneShot(listenFd);
    while (!this.#stopped) {
      if (!this.#acceptWaiting()) {
        // Out of fds, or another passing failure (logged): try again shortly.
        await Bun.sleep(100);
        continue;
      }
      try {
        await this.ctx.reactor.readable(listenFd, Date.now() + 3_600_000, 'peer connections');
      } catch {
        if (this.#stopped) return;
      }
    }
  }

  /**
   * Takes every connection waiting on the listening socket. Returns false when accept failed
   * (logged; EMFILE when the agent is out of fds), so that a session calling it goes on.
   */
  #acceptWaiting(): boolean {
    if (this.#listenFd < 0) return true;
    for (;;) {
      let fd: number;
      try {
        fd = acceptFd(this.#listenFd, { nonblock: true });
      } catch (err) {
        if (!this.#stopped) this.ctx.log.error('peer.accept_failed', { error: err });
        return false;
      }
      if (fd < 0) return true;
      void this.#inbound(fd);
    }
  }

  /** A new connection: a session, or a data connection named by its ticket. */
  async #inbound(fd: number): Promise<void> {
    const deadline = Date.now() + this.ctx.config.deadlines.handshakeMs;
    try {
      const opening = await readOpening(this.ctx.reactor, fd, deadline);
      if (opening.kind === 'session') return await this.#session(fd, deadline);
      // A data connection comes from an agent that has a session with this one; anything else
      // is a stranger's, turned away at once. The rest wait in the rendezvous (a full one, or a
      // ticket seen twice, turns them away too).
      const from = peerAddress(fd);
      if (!from || !this.#sessionAddresses.has(from)) {
        this.ctx.log.debug('peer.stranger_connection', { from: from ?? 'gone' });
        this.#reset(fd);
        return;
      }
      if (!this.#tickets.put(ticketKey(opening.ticket), fd, deadline)) this.#reset(fd);
    } catch (err) {
      this.ctx.log.info('peer.connection_dropped', {
        from: peerAddress(fd) ?? 'gone',
        code: (err as { code?: string }).code,
        error: err,
      });
      this.#reset(fd);
    }
  }

  /** Runs a session: the handshake, then offers until the dialer closes it. */
  async #session(fd: number, deadline: number): Promise<void> {
    const { config, reactor, hs, log } = this.ctx;
    const ch = new FrameChannel(reactor, fd, HANDSHAKE_FRAME_BYTES, config.deadlines.handshakeMs);
    let dialerNode: bigint;
    let purpose: 'join' | 'query';
    try {
      ({ purpose, dialerNode } = await acceptorHandshake(hs, ch, deadline));
    } catch (err) {
      const code = (err as { code?: string }).code;
      const level = code === 'EAUTH' ? 'warn' : 'info';
      log[level]('peer.handshake_failed', { from: peerAddress(fd) ?? 'gone', code, error: err });
      ch.fail(err as Error);
      this.#reset(fd);
      return;
    }
    if (purpose === 'query') return this.#answerQuery(ch, dialerNode, deadline);
    // A dialer's node can go away without a word; keepalive finds out, so that the session
    // (which waits for offers without a deadline) ends.
    keepSessionAlive(fd);
    const address = peerAddress(fd);
    ch.write(encodePeerFrame({ kind: 'joined' }));
    const session = new AcceptorSession(ch, dialerNode);
    this.#sessions.add(session);
    if (address)
      this.#sessionAddresses.set(address, (this.#sessionAddresses.get(address) ?? 0) + 1);
    log.debug('peer.session_opened', { node: dialerNode, from: address });
    this.ctx.onSession?.('accepted', dialerNode);
    try {
      for (;;) {
        const f = decodePeerFrame(await ch.next(Infinity, 'offers'));
        if (f.kind !== 'offers') {
          throw new ProtocolError(`Unexpected ${f.kind} frame in a session: expected offers`);
        }
        session.outstanding += f.offers.length;
        if (session.outstanding > MAX_OUTSTANDING_OFFERS) {
          throw new ProtocolError(
            `Node '${dialerNode}' has more than ${MAX_OUTSTANDING_OFFERS} offers outstanding`,
          );
        }
        // Their data connections were sent before the offers: most are waiting to be accepted.
        this.#acceptWaiting();
        for (const offer of f.offers) void this.#handleOffer(session, offer);
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      const closed = peerWentAway(err) || this.#stopped;
      log[closed ? 'debug' : 'warn']('peer.session_ended', { node: dialerNode, code, error: err });
      ch.fail(err as Error);
    } finally {
      this.#sessions.delete(session);
      if (address) {
        const left = (this.#sessionAddresses.get(address) ?? 1) - 1;
        if (left > 0) this.#sessionAddresses.set(address, left);
        else this.#sessionAddresses.delete(address);
      }
      close(fd);
    }
  }

  /** Answers a peer agent's Query with this node's captures; the connection then closes. */
  async #answerQuery(ch: FrameChannel, dialerNode: bigint, deadline: number): Promise<void> {
    try {
      const manifests = (await this.ctx.onQuery?.(dialerNode)) ?? [];
      ch.write(encodePeerFrame({ kind: 'captures', captures: { manifests } }));
      await ch.flushed(deadline);
      this.ctx.log.debug('peer.query_answered', { node: dialerNode, processes: manifests.length });
    } catch (err) {
      this.ctx.log.info('peer.query_failed', { node: dialerNode, error: err });
    } finally {
      ch.fail(new Error('the query was answered'));
      close(ch.fd);
    }
  }

  /**
   * One offered connection: meet its data connection, find its endpoint, check the peer,
   * write the dialer's drained bytes onto the connection and hand it on; answer the dialer
   * either way. Everything happens well within the time the dialer said it waits, so that
   * nothing is handed on after the dialer gave up.
   */
  async #handleOffer(session: AcceptorSession, offer: Offer): Promise<void> {
    const ticket = ticketKey(offer.ticket);
    if (this.#offered.has(ticket)) {
      const message = 'The offer repeats a ticket already offered';
      session.answer({ ticket: offer.ticket, refused: { code: 'EPROTOCOL', message } });
      return;
    }
    this.#offered.add(ticket);
    try {
      await this.#matchOffer(session, offer, ticket);
    } finally {
      this.#offered.delete(ticket);
    }
  }

  async #matchOffer(session: AcceptorSession, offer: Offer, ticket: string): Promise<void> {
    const budget = Math.min(this.ctx.config.deadlines.handshakeMs, offer.waitMs - ANSWER_MARGIN_MS);
    const deadline = Date.now() + budget;
    const refuse = (code: string, message: string, fd?: number) => {
      if (fd === undefined) this.#tickets.cancel(ticket, message);
      else this.#reset(fd);
      session.answer({ ticket: offer.ticket, refused: { code, message } });
    };
    let waited = false;
    // The data connection first: once taken it is held here for as long as the endpoint takes
    // to register. Usually both are there already and nothing waits.
    let fd = this.#tickets.tryTake(ticket);
    if (fd === undefined) {
      const to = endpointKey(offer.to);
      waited = true;
      try {
        fd = await this.#tickets.take(ticket, deadline, `the data connection offered for '${to}'`);
      } catch (err) {
        const waiting = this.#awaiting.get(to);
        if (waiting) waiting.lastProblem = (err as Error).message;
        return refuse('EDATA_CONNECTION', (err as Error).message);
      }
    }
    let task = this.#awaiting.get(endpointKey(offer.to));
    if (!task) {
      waited = true;
      task = await this.#matchInbound(offer.to, deadline);
    }
    const refusal = task
      ? this.#checkPeer(task, offer.from, session.dialerNode, offer.placementVersion)
      : unknownEndpoint(offer.to);
    if (refusal) {
      if (task) {
        task.lastProblem = refusal.message;
        task.lastCode = refusal.code;
      }
      this.ctx.log.warn('peer.refused', {
        endpoint: endpointKey(offer.to),
        from: endpointKey(offer.from),
        node: session.dialerNode,
        code: refusal.code,
        message: refusal.message,
      });
      return refuse(refusal.code, refusal.message, fd);
    }
    const matched = task!;
    this.#awaiting.delete(matched.key);
    let report: StateReport;
    try {
      const refill = towardPeer(offer.drained, matched.endpoint);
      if (refill.length > 0) {
        growSendBuffer(fd, refill.length);
        const rest = sendAll(this.ctx.reactor, fd, refill, deadline, 'drained bytes');
        if (rest) {
          waited = true;
          await rest;
        }
      }
      const family = isIPv6(this.ctx.config.listen.address) ? 'inet6' : 'inet';
      report = finishSocketState(fd, matched.endpoint, family, matched.pids());
      // After a wait, make sure the dialer still waits for this connection before handing it
      // on: its session is open, its time is not up, and it has not closed the connection (it
      // sends nothing after the record until it has the answer).
      if (waited) {
        const gone = !session.open
          ? `the session with node '${session.dialerNode}' ended`
          : Date.now() > deadline
            ? 'the dialer stopped waiting for the answer'
            : dialerClosed(fd);
        if (gone) throw new RewireError('EDATA_CONNECTION', `Not handed on: ${gone}`);
      }
    } catch (err) {
      this.#release(matched, (err as Error).message);
      const code = err instanceof RewireError ? err.code : 'EDATA_CONNECTION';
      return refuse(
        code === 'EDEADLINE' ? 'EDATA_CONNECTION' : code,
        `Node '${this.ctx.config.nodeId}' could not finish the connection: ${(err as Error).message}`,
        fd,
      );
    }
    this.ctx.reactor.forget(fd);
    const settled = matched.settle({
      state: 'live',
      how: 'remote',
      fd,
      peer: offer.from,
      peerNode: session.dialerNode,
      message: describeReport(report),
    });
    // Its restore ended meanwhile: the fd is closed already.
    if (!settled) return refuse('ECANCELLED', `The restore of endpoint '${matched.key}' ended`);
    const accepted = {
      endpoint: matched.endpoint.id,
      drained: matched.endpoint.drained,
      placementVersion: this.ctx.placement.version,
    };
    session.answer({ ticket: offer.ticket, accepted });
  }

  /** `task` waits for a dialer again (its matched connection fell through), noting why. */
  #release(task: EndpointTask, problem: string): void {
    task.lastProblem = problem;
    if (!task.settled && task.restore.state === 'running') this.#awaiting.set(task.key, task);
  }

  /** Closes `fd` with a reset: how a stranger or a rejected dialer is told. */
  #reset(fd: number): void {
    this.ctx.reactor.forget(fd);
    resetOnClose(fd);
    close(fd);
  }

  /** The task awaiting `to`, waiting for it to register until `deadline` (early handshakes). */
  async #matchInbound(to: EndpointId, deadline: number): Promise<EndpointTask | undefined> {
    const key = endpointKey(to);
    for (;;) {
      const task = this.#awaiting.get(key);
      if (task) return task;
      const ms = deadline - Date.now();
      if (ms <= 0 || this.#stopped) return undefined;
      await new Promise<void>((resolve) => {
        const list = this.#early.get(key) ?? [];
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        // A wait that times out takes its waker back, so that none pile up.
        const timer = setTimeout(() => {
          const left = (this.#early.get(key) ?? []).filter((w) => w !== wake);
          if (left.length > 0) this.#early.set(key, left);
          else this.#early.delete(key);
          resolve();
        }, ms);
        list.push(wake);
        this.#early.set(key, list);
      });
    }
  }

  /** Why an inbound peer must be refused, or undefined when it is the right one (SPEC §3.4). */
  #checkPeer(
    task: EndpointTask,
    from: EndpointId,
    dialerNode: bigint,
    version: bigint,
  ): { code: string; message: string } | undefined {
    if (version !== this.ctx.placement.version) {
      return {
        code: 'EPLACEMENT_MISMATCH',
        message: `Dialer restores against placement version '${version}', this node holds '${this.ctx.placement.version}'`,
      };
    }
    const recorded = task.endpoint.peer!;
    if (!sameEndpoint(recorded, from)) {
      const replaced = this.ctx.placement.replacementOf(recorded.process);
      const explained =
        replaced !== undefined &&
        sameProcess(replaced, from.process) &&
        recorded.conn === from.conn;
      if (!explained) {
        return {
          code: 'EPEER_CHANGED',
          message: `Endpoint '${task.key}' was connected to '${endpointKey(recorded)}', not '${endpointKey(from)}', and the placement does not explain the change`,
        };
      }
    }
    const placed = this.ctx.placement.nodeOf(from.process);
    if (placed !== undefined && placed !== dialerNode) {
      return {
        code: 'EPEER_NOT_PLACED',
        message: `Placement puts process '${processKey(from.process)}' on node '${placed}', but it connected from node '${dialerNode}'`,
      };
    }
    return undefined;
  }
}

/** Makes the coming close() send a reset (SO_LINGER on, 0 s): how a rejected dialer is told. */
function resetOnClose(fd: number): void {
  try {
    setLinger(fd, { onoff: true, seconds: 0 });
  } catch {
    // The connection is already gone; the close that follows is all there is to do.
  }
}

/** The address of the agent at the other end of `fd`, for logs. */
/** The IP address of the agent at the other end of `fd`, or undefined when it is gone. */
function peerAddress(fd: number): string | undefined {
  try {
    const peer = getPeerName(fd);
    return peer.family === 'unix' ? undefined : peer.address;
  } catch {
    return undefined;
  }
}

/**
 * Why the dialer is no longer at the other end of a data connection it sends nothing on
 * before its answer, or undefined while it waits: a peek (which takes nothing) that finds an
 * end of file, a reset, or bytes the dialer should not have sent.
 */
function dialerClosed(fd: number): string | undefined {
  try {
    const n = recv(fd, new Uint8Array(1), MSG.PEEK | MSG.DONTWAIT);
    if (n === 0) return 'the dialer closed the connection';
    if (n > 0) return 'the dialer sent bytes before its answer';
    return undefined;
  } catch (err) {
    return `the connection broke: ${(err as Error).message}`;
  }
}

/**
 * TCP keepalive on a session's socket: a dialer's node that goes away without a word is found
 * out within about 25 s (10 s idle, then 3 probes 5 s apart), and unacknowledged data is
 * given up after 30 s.
 */
function keepSessionAlive(fd: number): void {
  setIntOption(fd, 'SO_KEEPALIVE', 1);
  setIntOption(fd, 'TCP_KEEPIDLE', 10);
  setIntOption(fd, 'TCP_KEEPINTVL', 5);
  setIntOption(fd, 'TCP_KEEPCNT', 3);
  setIntOption(fd, 'TCP_USER_TIMEOUT', 30_000);
}

function unknownEndpoint(to: EndpointId): { code: string; message: string } {
  return {
    code: 'EUNKNOWN_ENDPOINT',
    message: `No process on this node registered endpoint '${endpointKey(to)}'`,
  };
}
