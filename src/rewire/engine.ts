/**
 * The rewiring engine: takes manifests, decides for each endpoint how it comes back (dialled
 * to the peer's node, awaited from it, paired on this node, re-created as a listener, or
 * declared dead), runs the peer handshakes, and settles every endpoint exactly once, before
 * its restore's deadline.
 */
import {
  accept,
  close,
  connect,
  listen,
  bind,
  setLinger,
  setNonBlocking,
  socket,
  socketError,
  errnoName,
  getSockName,
} from '../../ffi/index.ts';
import type { AgentConfig } from '../config/types.ts';
import { EndpointError, RewireError, SyscallError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Endpoint, EndpointId, Manifest } from '../model/types.ts';
import type { PlacementStore } from '../placement/store.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { isIPv6 } from 'node:net';
import { endpointKey, processKey, sameEndpoint, sameProcess } from '../model/ids.ts';
import { deadSocket, pairLocally, recreateListener } from './local-sockets.ts';
import {
  acceptorHandshake,
  dialerHandshake,
  sendFrame,
  writeRefill,
  type HandshakeContext,
} from './peer-handshake.ts';
import { EndpointTask, Restore, type Outcome } from './restore.ts';
import {
  applyAfterConnect,
  applyBeforeBind,
  applyFcntl,
  describeReport,
  growSendBuffer,
} from './socket-state.ts';
import { Semaphore } from './semaphore.ts';
import { daemonEndpoint, REHOMED_CONN_BASE, type DaemonSession } from './rehome.ts';

/** One dial attempt: a final outcome, or a problem (with its code) worth another try. */
interface DialAttempt {
  outcome?: Outcome;
  problem: string;
  code: string;
}

/** Refusal codes after which the dialer tries again, until its deadline. */
/**
 * Refusal codes after which the dialer tries again, until its deadline: the acceptor's agent
 * may get the same placement, or its process may register, a moment later.
 */
const RETRYABLE = new Set(['EPLACEMENT_MISMATCH', 'EUNKNOWN_ENDPOINT']);

export interface EngineEvents {
  /** A restore finished (done, failed or cancelled). */
  onRestoreDone?: (restore: Restore) => void;
  /** A connection was re-homed: the daemon's end (for the connection table). */
  onRehomed?: (daemon: DaemonSession, endpoint: Endpoint, task: EndpointTask) => void;
  /** An endpoint settled (for metrics and the connection table). */
  onSettled?: (task: EndpointTask) => void;
  /** A handshake finished, with its duration in seconds and its result. */
  onHandshake?: (seconds: number, result: string) => void;
  /** A peer agent asked for this node's captures (the cluster map): the manifests to send. */
  onQuery?: (node: bigint) => Promise<Manifest[]>;
}

export class RewireEngine {
  readonly restores = new Map<string, Restore>();
  readonly #byProcess = new Map<string, Restore>();
  readonly #awaitingInbound = new Map<string, EndpointTask>();
  readonly #earlyInbound = new Map<string, Array<() => void>>();
  readonly #localPending = new Map<string, EndpointTask>();
  readonly #daemons = new Map<string, DaemonSession>();
  readonly #awaitingDaemon = new Map<string, EndpointTask[]>();
  #rehomed = 0;
  readonly #dialSlots: Semaphore;
  readonly #hs: HandshakeContext;
  #listenFd = -1;
  #stopped = false;

  constructor(
    readonly config: AgentConfig,
    readonly placement: PlacementStore,
    readonly reactor: Reactor,
    readonly log: Logger,
    readonly events: EngineEvents = {},
  ) {
    this.#dialSlots = new Semaphore(config.dialConcurrency);
    this.#hs = {
      reactor,
      key: config.clusterKey,
      nodeId: config.nodeId,
      maxFrameBytes: config.maxFrameBytes,
    };
  }

  /** Binds the peer listener and starts accepting other agents. Returns the bound port. */
  listen(): number {
    const family = isIPv6(this.config.listen.address) ? 'inet6' : 'inet';
    const fd = socket(family, 'stream', { nonblock: true });
    try {
      bind(fd, { family, address: this.config.listen.address, port: this.config.listen.port });
      listen(fd, 4096);
    } catch (err) {
      close(fd);
      throw new RewireError(
        'ELISTEN',
        `Cannot listen for peer agents on ${this.config.listen.address}:${this.config.listen.port}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.#listenFd = fd;
    void this.#acceptLoop(fd);
    const bound = getSockName(fd);
    return bound.family === 'unix' ? 0 : bound.port;
  }

  stop(): void {
    this.#stopped = true;
    for (const r of this.restores.values()) {
      r.end('cancelled', 'ESHUTDOWN', () => 'The agent is shutting down');
      r.dispose();
    }
    if (this.#listenFd >= 0) {
      this.reactor.forget(this.#listenFd);
      close(this.#listenFd);
      this.#listenFd = -1;
    }
  }

  /** The restore of a process that has not been claimed by a local session yet, if any. */
  unclaimedRestoreOf(manifest: Manifest): Restore | undefined {
    const r = this.#byProcess.get(processKey(manifest.process));
    return r && !r.claimed ? r : undefined;
  }

  /** Starts restoring a manifest. Throws ERESTORE_ACTIVE when the process has one running. */
  start(manifest: Manifest, deadlineMs = this.config.deadlines.restoreMs): Restore {
    const key = processKey(manifest.process);
    const active = this.#byProcess.get(key);
    if (active && active.state === 'running') {
      throw new RewireError(
        'ERESTORE_ACTIVE',
        `Cannot start restore: process '${key}' has restore '${active.id}' running`,
      );
    }
    const restore = new Restore(
      manifest,
      this.placement.current ? this.placement.version : null,
      deadlineMs,
    );
    this.restores.set(restore.id, restore);
    this.#byProcess.set(key, restore);
    this.log.info('restore.start', {
      restore: restore.id,
      process: key,
      endpoints: manifest.endpoints.length,
    });
    restore.subscribe((task) => this.#settled(task));
    const timer = setTimeout(
      () => this.#expire(restore),
      Math.max(0, restore.deadline - Date.now()),
    );
    void restore.whenDone().then(() => {
      clearTimeout(timer);
      const seconds = (Date.now() - restore.startedAt.getTime()) / 1000;
      this.log.info('restore.end', {
        restore: restore.id,
        state: restore.state,
        seconds,
        ...restore.counts(),
      });
      this.events.onRestoreDone?.(restore);
    });
    for (const task of restore.tasks) this.#route(task);
    return restore;
  }

  /** Cancels a running restore; every pending endpoint fails with ECANCELLED. */
  cancel(restore: Restore, why = 'Cancelled by the operator'): void {
    restore.end('cancelled', 'ECANCELLED', () => why);
    for (const t of restore.tasks) this.#unregister(t);
  }

  /** Drops a finished restore and closes the fds it still holds. */
  forget(restore: Restore): void {
    restore.dispose();
    this.restores.delete(restore.id);
    if (this.#byProcess.get(restore.processKey) === restore)
      this.#byProcess.delete(restore.processKey);
  }

  #settled(task: EndpointTask): void {
    this.#unregister(task);
    const fields = { endpoint: task.key, state: task.state, how: task.how, code: task.code };
    if (task.state === 'failed')
      this.log.warn('endpoint.failed', { ...fields, message: task.message });
    else this.log.debug('endpoint.settled', fields);
    this.events.onSettled?.(task);
  }

  #unregister(task: EndpointTask): void {
    if (this.#awaitingInbound.get(task.key) === task) this.#awaitingInbound.delete(task.key);
    if (this.#localPending.get(task.key) === task) this.#localPending.delete(task.key);
  }

  #expire(restore: Restore): void {
    if (restore.state !== 'running') return;
    const ms = restore.deadline - restore.startedAt.getTime();
    restore.end('failed', 'EDEADLINE', (t) => this.#expiryMessage(t, ms));
  }

  #expiryMessage(task: EndpointTask, ms: number): string {
    const peer = task.endpoint.peer ? endpointKey(task.endpoint.peer) : 'none';
    if (this.#localPending.get(task.key) === task) {
      return `Peer endpoint '${peer}' did not register on this node within ${ms} ms`;
    }
    if (this.#awaitingInbound.get(task.key) === task) {
      return `No connection from peer endpoint '${peer}' arrived within ${ms} ms`;
    }
    return `Endpoint was not restored within ${ms} ms`;
  }

  /** Where the endpoint's peer is now: its (possibly replaced) id and node. */
  /**
   * Where the endpoint's peer is now: its (possibly replaced) id and its node. A process the
   * placement does not list is where it was at checkpoint (the recorded peer node, else its
   * birth node) when the placement knows that node, and on this node otherwise (a single node
   * needs no placement at all).
   */
  #peerNow(peer: EndpointId, recordedNode: bigint | undefined): { id: EndpointId; node: bigint } {
    const replaced = this.placement.replacementOf(peer.process);
    const id = replaced ? { process: replaced, conn: peer.conn } : peer;
    const placed = this.placement.nodeOf(id.process);
    if (placed !== undefined) return { id, node: placed };
    const before = recordedNode ?? id.process.hostId;
    return { id, node: this.placement.node(before) ? before : this.config.nodeId };
  }

  #route(task: EndpointTask): void {
    const e = task.endpoint;
    if (e.role === 'listen') return this.#restoreListener(task);
    if (!e.peer) {
      task.settle({
        state: 'failed',
        code: 'EMANIFEST',
        message: `Endpoint '${task.key}' has role ${e.role} but no peer`,
      });
      return;
    }
    const peer = this.#peerNow(e.peer, e.peerNode);
    if (this.placement.isDeparted(peer.node)) {
      if (this.#rehomable(task, peer.id)) return this.#rehomeOrWait(task);
      return this.#declareDead(task, peer, 'EPEER_GONE', `Peer's node '${peer.node}' has departed`);
    }
    if (peer.node === this.config.nodeId) return this.#pairHere(task, peer.id);
    if (e.family === 'unix') {
      return this.#declareDead(
        task,
        peer,
        'EUNIX_ACROSS_NODES',
        `A unix-socket peer now runs on another node ('${peer.node}')`,
      );
    }
    if (e.role === 'connect') {
      void this.#dial(task, peer);
      return;
    }
    this.#awaitingInbound.set(task.key, task);
    for (const wake of this.#earlyInbound.get(task.key) ?? []) wake();
    this.#earlyInbound.delete(task.key);
  }

  /** A parent daemon of this node keeps its session open: connections may be re-homed to it. */
  registerDaemon(session: DaemonSession): void {
    this.#daemons.set(session.job, session);
    this.log.info('daemon.registered', { job: session.job, pid: session.manifest.pid });
    const waiting = this.#awaitingDaemon.get(session.job) ?? [];
    this.#awaitingDaemon.delete(session.job);
    for (const task of waiting) if (!task.settled) this.#rehome(task, session);
  }

  unregisterDaemon(session: DaemonSession): void {
    if (this.#daemons.get(session.job) === session) this.#daemons.delete(session.job);
  }

  /**
   * The peer was a parent daemon that was not restarted anywhere, the job is known, and this
   * process is not a daemon itself (daemon-to-daemon connections of a departed node stay dead).
   */
  #rehomable(task: EndpointTask, peer: EndpointId): boolean {
    const exe = task.endpoint.peerExecutable;
    const { job, executable } = task.restore.manifest;
    const daemons = this.config.parentDaemons;
    if (!exe || !job || !daemons.includes(exe) || daemons.includes(executable)) return false;
    return this.placement.nodeOf(peer.process) === undefined;
  }

  #rehomeOrWait(task: EndpointTask): void {
    const job = task.restore.manifest.job!;
    const daemon = this.#daemons.get(job);
    if (daemon) return this.#rehome(task, daemon);
    task.lastProblem = `No parent daemon of job '${job}' on this node has opened its session yet`;
    task.lastCode = 'EREHOME_NO_DAEMON';
    this.#awaitingDaemon.set(job, [...(this.#awaitingDaemon.get(job) ?? []), task]);
  }

  /** Pairs the endpoint with a new socket in this node's parent daemon of its job. */
  #rehome(task: EndpointTask, daemon: DaemonSession): void {
    const rank = task.endpoint;
    const other = daemonEndpoint(daemon.manifest, rank, REHOMED_CONN_BASE + ++this.#rehomed);
    const [c, a] = rank.role === 'connect' ? [rank, other] : [other, rank];
    let fds: [number, number] | undefined;
    try {
      const paired = pairLocally(c, a, this.config.localPolicy);
      fds = paired.fds;
      const [rankFd, daemonFd] = rank.role === 'connect' ? fds : [fds[1], fds[0]];
      applyFcntl(rankFd, rank, this.#pids(task));
      applyFcntl(daemonFd, other, { checkpoint: daemon.manifest.pid, now: daemon.manifest.pid });
      if (!daemon.deliver({ id: other.id, peer: rank.id, fd: daemonFd })) {
        close(daemonFd);
        close(rankFd);
        fds = undefined;
        this.unregisterDaemon(daemon);
        return this.#rehomeOrWait(task);
      }
      fds = undefined;
      this.events.onRehomed?.(daemon, other, task);
      this.log.info('endpoint.rehomed', {
        endpoint: task.key,
        daemon: daemon.manifest.pid,
        job: daemon.job,
      });
      task.settle({
        state: 'live',
        how: 'rehomed',
        fd: rankFd,
        peer: other.id,
        peerNode: this.config.nodeId,
      });
    } catch (err) {
      if (fds) for (const fd of fds) close(fd);
      task.settle(failure(err, 'EREHOME'));
    }
  }

  #declareDead(
    task: EndpointTask,
    peer: { id: EndpointId; node: bigint },
    code: string,
    message: string,
  ): void {
    const fd = deadSocket(task.endpoint.drained);
    task.settle({
      state: 'dead',
      how: 'dead',
      fd,
      code,
      message,
      peer: peer.id,
      peerNode: peer.node,
    });
  }

  #restoreListener(task: EndpointTask): void {
    try {
      const { fd, report } = recreateListener(task.endpoint);
      const fcntl = applyFcntl(fd, task.endpoint, this.#pids(task));
      fcntl.failed.push(...report.failed);
      fcntl.skipped.push(...report.skipped);
      task.settle({
        state: 'live',
        how: 'listen',
        fd,
        message: describeReport(fcntl),
        peerNode: this.config.nodeId,
      });
    } catch (err) {
      task.settle(failure(err, 'ELISTEN'));
    }
  }

  #pids(task: EndpointTask): { checkpoint: number; now: number } {
    const m = task.restore.manifest;
    return { checkpoint: m.checkpointPid ?? m.process.pid, now: m.pid };
  }

  #pairHere(task: EndpointTask, peerId: EndpointId): void {
    const peerKey = endpointKey(peerId);
    const other = this.#localPending.get(peerKey);
    if (!other) {
      this.#localPending.set(task.key, task);
      return;
    }
    this.#localPending.delete(peerKey);
    const [c, a] = task.endpoint.role === 'connect' ? [task, other] : [other, task];
    try {
      const paired = pairLocally(c.endpoint, a.endpoint, this.config.localPolicy);
      const [fc, fa] = paired.fds;
      const rc = applyFcntl(fc, c.endpoint, this.#pids(c));
      const ra = applyFcntl(fa, a.endpoint, this.#pids(a));
      const node = this.config.nodeId;
      c.settle({
        state: 'live',
        how: paired.how,
        fd: fc,
        peer: a.endpoint.id,
        peerNode: node,
        message: describeReport(merge(paired.reports[0], rc)),
      });
      a.settle({
        state: 'live',
        how: paired.how,
        fd: fa,
        peer: c.endpoint.id,
        peerNode: node,
        message: describeReport(merge(paired.reports[1], ra)),
      });
    } catch (err) {
      c.settle(failure(err, 'ELOCAL_PAIR'));
      a.settle(failure(err, 'ELOCAL_PAIR'));
    }
  }

  // ---- dialling ------------------------------------------------------------------------

  async #dial(task: EndpointTask, peer: { id: EndpointId; node: bigint }): Promise<void> {
    const release = await this.#dialSlots.acquire();
    try {
      const outcome = await this.#dialUntilDeadline(task, peer);
      task.settle(outcome);
    } catch (err) {
      task.settle(failure(err, 'EPEER_UNREACHABLE'));
    } finally {
      release();
    }
  }

  async #dialUntilDeadline(
    task: EndpointTask,
    peer: { id: EndpointId; node: bigint },
  ): Promise<Outcome> {
    const node = this.placement.node(peer.node);
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
      const attempt = await this.#dialOnce(task, peer, node.address, node.port);
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

  /** One connection attempt: an outcome, or a retryable problem. */
  async #dialOnce(
    task: EndpointTask,
    peer: { id: EndpointId; node: bigint },
    address: string,
    port: number,
  ): Promise<DialAttempt> {
    const family = isIPv6(address) ? 'inet6' : 'inet';
    const fd = socket(family, 'stream', { nonblock: true });
    let handed = false;
    try {
      const early = applyBeforeBind(fd, task.endpoint, family);
      const connectDeadline = Math.min(
        task.restore.deadline,
        Date.now() + this.config.deadlines.connectMs,
      );
      if (!connect(fd, { family, address, port })) {
        await this.reactor.writable(fd, connectDeadline, `the connection to ${address}:${port}`);
        const err = socketError(fd);
        if (err !== 0) return { problem: `connect: ${errnoName(err)}`, code: 'EPEER_UNREACHABLE' };
      }
      const started = performance.now();
      // The acceptor may hold an early handshake for up to its own handshake deadline while its
      // process registers, so the dialer waits twice as long for the answer.
      const deadline = Math.min(
        task.restore.deadline,
        Date.now() + 2 * this.config.deadlines.handshakeMs,
      );
      const request = {
        from: task.endpoint.id,
        to: peer.id,
        placementVersion: this.placement.version,
        drained: task.endpoint.drained,
      };
      const { answer } = await dialerHandshake(this.#hs, fd, request, deadline);
      this.events.onHandshake?.((performance.now() - started) / 1000, answer.kind);
      if (answer.kind === 'refused') {
        const { code, message } = answer.refused;
        const problem = `refused by node '${peer.node}': ${message}`;
        if (RETRYABLE.has(code)) return { problem, code };
        return { problem, code, outcome: { state: 'failed', code, message: problem } };
      }
      const refill = answer.accepted.drained;
      growSendBuffer(fd, refill.length);
      await writeRefill(this.#hs, fd, refill, deadline);
      const report = applyAfterConnect(fd, task.endpoint, family, early);
      merge(report, applyFcntl(fd, task.endpoint, this.#pids(task)));
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
      this.reactor.forget(fd);
      if (!handed) close(fd);
    }
  }

  // ---- accepting -----------------------------------------------------------------------

  async #acceptLoop(listenFd: number): Promise<void> {
    while (!this.#stopped) {
      let got: ReturnType<typeof accept>;
      try {
        got = accept(listenFd, { nonblock: true });
      } catch (err) {
        if (this.#stopped) return;
        this.log.error('peer.accept_failed', { error: err });
        await Bun.sleep(100);
        continue;
      }
      if (got) {
        void this.#inbound(got.fd, got.peer);
        continue;
      }
      try {
        await this.reactor.readable(listenFd, Date.now() + 3_600_000, 'peer connections');
      } catch {
        if (this.#stopped) return;
      }
    }
  }

  async #inbound(fd: number, from: unknown): Promise<void> {
    let handed = false;
    const deadline = Date.now() + this.config.deadlines.handshakeMs;
    try {
      const request = await acceptorHandshake(this.#hs, fd, deadline);
      if ('query' in request) return await this.#answerQuery(fd, request.dialerNode, deadline);
      const { attach, dialerNode } = request;
      const task = await this.#matchInbound(attach.to, deadline);
      const refusal = task
        ? this.#checkPeer(task, attach.from, dialerNode, attach.placementVersion)
        : unknownEndpoint(attach.to);
      if (refusal) {
        if (task) {
          task.lastProblem = refusal.message;
          task.lastCode = refusal.code;
        }
        this.log.warn('peer.refused', {
          endpoint: endpointKey(attach.to),
          from: endpointKey(attach.from),
          node: dialerNode,
          code: refusal.code,
          message: refusal.message,
        });
        await sendFrame(this.#hs, fd, { kind: 'refused', refused: refusal }, deadline);
        return;
      }
      handed = await this.#completeInbound(task!, fd, attach, dialerNode, deadline);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EAUTH') resetOnClose(fd);
      const level = code === 'EAUTH' ? 'warn' : 'info';
      this.log[level]('peer.handshake_failed', { from: from as object, code, error: err });
    } finally {
      this.reactor.forget(fd);
      if (!handed) close(fd);
    }
  }

  /** Answers a peer agent's Query with this node's captures; the connection then closes. */
  async #answerQuery(fd: number, dialerNode: bigint, deadline: number): Promise<void> {
    const manifests = (await this.events.onQuery?.(dialerNode)) ?? [];
    await sendFrame(this.#hs, fd, { kind: 'captures', captures: { manifests } }, deadline);
    this.log.debug('peer.query_answered', { node: dialerNode, processes: manifests.length });
  }

  async #completeInbound(
    task: EndpointTask,
    fd: number,
    attach: { from: EndpointId; drained: Uint8Array },
    dialerNode: bigint,
    deadline: number,
  ): Promise<boolean> {
    this.#awaitingInbound.delete(task.key);
    try {
      const accepted = {
        endpoint: task.endpoint.id,
        drained: task.endpoint.drained,
        placementVersion: this.placement.version,
      };
      growSendBuffer(fd, attach.drained.length);
      await sendFrame(this.#hs, fd, { kind: 'accepted', accepted }, deadline, attach.drained);
      const family = isIPv6(this.config.listen.address) ? 'inet6' : 'inet';
      const report = applyAfterConnect(fd, task.endpoint, family);
      merge(report, applyFcntl(fd, task.endpoint, this.#pids(task)));
      setNonBlockingAsRecorded(fd, task.endpoint);
      return task.settle({
        state: 'live',
        how: 'remote',
        fd,
        peer: attach.from,
        peerNode: dialerNode,
        message: describeReport(report),
      });
    } catch (err) {
      if (!task.settled && task.restore.state === 'running')
        this.#awaitingInbound.set(task.key, task);
      task.lastProblem = (err as Error).message;
      throw err;
    }
  }

  /** The task awaiting `to`, waiting for it to register until `deadline` (early handshakes). */
  async #matchInbound(to: EndpointId, deadline: number): Promise<EndpointTask | undefined> {
    const key = endpointKey(to);
    for (;;) {
      const task = this.#awaitingInbound.get(key);
      if (task) return task;
      const ms = deadline - Date.now();
      if (ms <= 0 || this.#stopped) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        const list = this.#earlyInbound.get(key) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.#earlyInbound.set(key, list);
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
    if (version !== this.placement.version) {
      return {
        code: 'EPLACEMENT_MISMATCH',
        message: `Dialer restores against placement version '${version}', this node holds '${this.placement.version}'`,
      };
    }
    const recorded = task.endpoint.peer!;
    if (!sameEndpoint(recorded, from)) {
      const replaced = this.placement.replacementOf(recorded.process);
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
    const placed = this.placement.nodeOf(from.process);
    if (placed !== undefined && placed !== dialerNode) {
      return {
        code: 'EPEER_NOT_PLACED',
        message: `Placement puts process '${processKey(from.process)}' on node '${placed}', but it connected from node '${dialerNode}'`,
      };
    }
    return undefined;
  }
}

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

/** Makes the coming close() send a reset (SO_LINGER on, 0 s): how a rejected dialer is told. */
function resetOnClose(fd: number): void {
  try {
    setLinger(fd, { onoff: true, seconds: 0 });
  } catch {
    // The connection is already gone; the close that follows is all there is to do.
  }
}

function unknownEndpoint(to: EndpointId): { code: string; message: string } {
  return {
    code: 'EUNKNOWN_ENDPOINT',
    message: `No process on this node registered endpoint '${endpointKey(to)}'`,
  };
}

function setNonBlockingAsRecorded(fd: number, endpoint: Endpoint): void {
  if (!endpoint.fcntl) setNonBlocking(fd, false);
}

function merge(
  into: { skipped: string[]; failed: string[] },
  more: { skipped: string[]; failed: string[] },
) {
  into.skipped.push(...more.skipped);
  into.failed.push(...more.failed);
  return into;
}

function failure(err: unknown, fallback: string): Outcome {
  const code = err instanceof EndpointError || err instanceof RewireError ? err.code : fallback;
  return { state: 'failed', code, message: (err as Error).message };
}
