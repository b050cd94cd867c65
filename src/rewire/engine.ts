/**
 * The rewiring engine: takes manifests, decides for each endpoint how it comes back (dialled
 * to the peer's node by the Dialer, awaited from it by the Acceptor, paired on this node,
 * re-created as a listener, re-homed to the job's parent daemon, or declared dead), and settles
 * every endpoint exactly once, before its restore's deadline.
 */
import { close } from '../../ffi/index.ts';
import type { AgentConfig } from '../config/types.ts';
import { RewireError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { endpointKey, processKey } from '../model/ids.ts';
import type { Endpoint, EndpointId, Manifest } from '../model/types.ts';
import type { PlacementStore } from '../placement/store.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { Acceptor } from './acceptor.ts';
import { Dialer } from './dialer.ts';
import { deadSocket, pairLocally, recreateListener } from './local-sockets.ts';
import type { HandshakeContext } from './peer-handshake.ts';
import { daemonEndpoint, REHOMED_CONN_BASE, type DaemonSession } from './rehome.ts';
import { EndpointTask, failureOutcome, Restore } from './restore.ts';
import { applyFcntl, describeReport, mergeReports } from './socket-state.ts';

export interface EngineEvents {
  /** A restore finished (done, failed or cancelled). */
  onRestoreDone?: (restore: Restore) => void;
  /** A connection was re-homed: the daemon's end (for the connection table). */
  onRehomed?: (daemon: DaemonSession, endpoint: Endpoint, task: EndpointTask) => void;
  /** An endpoint settled (for metrics and the connection table). */
  onSettled?: (task: EndpointTask) => void;
  /** A handshake finished, with its duration in seconds and its result. */
  onHandshake?: (seconds: number, result: string) => void;
  /** An authenticated session with the agent of `node` opened, dialed by us or accepted. */
  onSession?: (side: 'dialed' | 'accepted', node: bigint) => void;
  /** A peer agent asked for this node's captures (the cluster map): the manifests to send. */
  onQuery?: (node: bigint) => Promise<Manifest[]>;
}

export class RewireEngine {
  readonly restores = new Map<string, Restore>();
  readonly #byProcess = new Map<string, Restore>();
  readonly #localPending = new Map<string, EndpointTask>();
  readonly #daemons = new Map<string, DaemonSession>();
  readonly #awaitingDaemon = new Map<string, EndpointTask[]>();
  #rehomed = 0;
  readonly #dialer: Dialer;
  readonly #acceptor: Acceptor;

  constructor(
    readonly config: AgentConfig,
    readonly placement: PlacementStore,
    readonly reactor: Reactor,
    readonly log: Logger,
    readonly events: EngineEvents = {},
  ) {
    const hs: HandshakeContext = {
      reactor,
      key: config.clusterKey,
      nodeId: config.nodeId,
      maxFrameBytes: config.maxFrameBytes,
    };
    this.#dialer = new Dialer({
      config,
      placement,
      reactor,
      hs,
      onHandshake: events.onHandshake,
      onSession: events.onSession,
    });
    this.#acceptor = new Acceptor({
      config,
      placement,
      reactor,
      hs,
      log,
      onQuery: events.onQuery,
      onSession: events.onSession,
    });
  }

  /** Binds the peer listener and starts accepting other agents. Returns the bound port. */
  listen(): number {
    return this.#acceptor.listen();
  }

  stop(): void {
    this.#acceptor.stop();
    this.#dialer.stop();
    for (const r of this.restores.values()) {
      r.end('cancelled', 'ESHUTDOWN', () => 'The agent is shutting down');
      r.dispose();
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
    this.#acceptor.unexpect(task);
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
    if (this.#acceptor.isExpecting(task)) {
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
      void this.#dialer.dial(task, peer);
      return;
    }
    this.#acceptor.expect(task);
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
      applyFcntl(rankFd, rank, task.pids());
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
      task.settle(failureOutcome(err, 'EREHOME'));
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
      const fcntl = applyFcntl(fd, task.endpoint, task.pids());
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
      task.settle(failureOutcome(err, 'ELISTEN'));
    }
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
      const rc = applyFcntl(fc, c.endpoint, c.pids());
      const ra = applyFcntl(fa, a.endpoint, a.pids());
      const node = this.config.nodeId;
      c.settle({
        state: 'live',
        how: paired.how,
        fd: fc,
        peer: a.endpoint.id,
        peerNode: node,
        message: describeReport(mergeReports(paired.reports[0], rc)),
      });
      a.settle({
        state: 'live',
        how: paired.how,
        fd: fa,
        peer: c.endpoint.id,
        peerNode: node,
        message: describeReport(mergeReports(paired.reports[1], ra)),
      });
    } catch (err) {
      c.settle(failureOutcome(err, 'ELOCAL_PAIR'));
      a.settle(failureOutcome(err, 'ELOCAL_PAIR'));
    }
  }

  // ---- dialling ------------------------------------------------------------------------

  // ---- accepting -----------------------------------------------------------------------
}
