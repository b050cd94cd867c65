/**
 * The agent's control socket (SPEC §3.9): AF_UNIX SOCK_SEQPACKET in the runtime directory.
 * A local process (or a launcher on its behalf) sends a RestoreRequest; the agent authorises
 * it by SO_PEERCRED (root, or the uid that owns the pid being restored), runs or claims the
 * restore, and streams one EndpointResult per endpoint with its fd attached, then RestoreDone.
 *
 * Ownership: each restored fd moves from the restore to the session when it is sent; the
 * session closes its copy once the kernel has queued it to the client. A client that goes
 * away mid-restore cancels the restore, and every fd it held is closed.
 */
import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

import {
  bind,
  close,
  getPeerCred,
  listen,
  recvFds,
  socket,
  accept,
  sendFds,
  send,
  MSG,
} from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { decodeControlRequest, encodeControlReply } from '../model/codec.ts';
import type { ControlReply, EndpointResult, RestoreRequest } from '../model/frames.ts';
import { validateManifest } from '../model/validate.ts';
import type { EndpointId, Manifest } from '../model/types.ts';
import type { Reactor } from '../reactor/reactor.ts';
import type { RewireEngine } from '../rewire/engine.ts';
import type { EndpointTask, Restore } from '../rewire/restore.ts';
import { FrameReader } from '../wire/framer.ts';
import { packFrames, PACKET_BYTES, type Packet } from './packets.ts';

export interface ControlServerOptions {
  runtimeDir: string;
  maxFrameBytes: number;
  /** How long a client has to send its request. */
  requestTimeoutMs: number;
}

/** A long-lived session: where connections handed over later are delivered. */
export interface OpenSession {
  pid: number;
  processKey: string;
  /** Queues a new live connection for the process; false when the session is gone. */
  deliver(connection: { id: EndpointId; peer: EndpointId; fd: number }): boolean;
}

export class ControlServer {
  readonly path: string;
  readonly sessions = new Map<string, OpenSession>();
  #fd = -1;
  #stopped = false;

  constructor(
    readonly options: ControlServerOptions,
    readonly engine: RewireEngine,
    readonly reactor: Reactor,
    readonly log: Logger,
  ) {
    this.path = join(options.runtimeDir, 'control.sock');
  }

  /** Creates the runtime directory (0700) and starts listening. */
  start(): void {
    mkdirSync(this.options.runtimeDir, { recursive: true, mode: 0o700 });
    if ((statSync(this.options.runtimeDir).mode & 0o777) !== 0o700)
      chmodSync(this.options.runtimeDir, 0o700);
    rmSync(this.path, { force: true });
    const fd = socket('unix', 'seqpacket', { nonblock: true });
    try {
      bind(fd, { family: 'unix', path: this.path });
      listen(fd, 256);
    } catch (err) {
      close(fd);
      throw new RewireError(
        'ELISTEN',
        `Cannot listen on control socket '${this.path}': ${(err as Error).message}`,
      );
    }
    this.#fd = fd;
    void this.#acceptLoop();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#fd < 0) return;
    this.reactor.forget(this.#fd);
    close(this.#fd);
    this.#fd = -1;
    rmSync(this.path, { force: true });
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#stopped) {
      const got = safeAccept(this.#fd);
      if (got !== null) {
        void this.#session(got);
        continue;
      }
      try {
        await this.reactor.readable(this.#fd, Date.now() + 3_600_000, 'control clients');
      } catch {
        if (this.#stopped) return;
      }
    }
  }

  async #session(fd: number): Promise<void> {
    const session = new Session(fd, this);
    try {
      await session.run();
    } catch (err) {
      this.log.info('control.session_ended', { error: err });
    } finally {
      session.dispose();
    }
  }
}

function safeAccept(fd: number): number | null {
  try {
    return accept(fd, { nonblock: true })?.fd ?? null;
  } catch {
    return null;
  }
}

/** Whether `uid` may restore process `pid`: root may restore any, others their own. */
function authorised(uid: number, pid: number): boolean {
  if (uid === 0) return true;
  try {
    return statSync(`/proc/${pid}`).uid === uid;
  } catch {
    return false;
  }
}

class Session {
  readonly #reader: FrameReader;
  #gone = false;
  #outbox: Array<{ body: Uint8Array; fds: number[] }> = [];
  #flushing: Promise<void> = Promise.resolve();
  #hangUpWatch: Promise<void> | undefined;
  #isReady = false;
  readonly #readyWaiters: Array<() => void> = [];

  constructor(
    readonly fd: number,
    readonly server: ControlServer,
  ) {
    this.#reader = new FrameReader(server.options.maxFrameBytes);
  }

  async run(): Promise<void> {
    const begun = await this.#begin();
    if (!begun) return;
    const { request, restore } = begun;
    const engine = this.server.engine;
    const pid = restore.manifest.pid;
    try {
      await this.#follow(restore);
      if (this.#gone) {
        this.server.log.warn('control.client_gone', { restore: restore.id, pid });
        engine.cancel(restore, `The process (pid ${pid}) closed its control session`);
        return;
      }
      await this.#flushing;
      await this.#send([{ body: doneFrame(restore), fds: [] }]);
    } finally {
      engine.forget(restore);
    }
    if (request.keepOpen) await this.#keepOpen(restore.manifest, restore.processKey);
  }

  /**
   * Reads, authorises and checks the request, and starts (or claims) its restore. A request
   * that cannot go on is answered with a RestoreDone whose `code` says why, and gives null.
   */
  async #begin(): Promise<{ request: RestoreRequest; restore: Restore } | null> {
    const cred = getPeerCred(this.fd);
    let pid = 0;
    try {
      const request = await this.#readRequest();
      const manifest = request.manifest;
      if (manifest.pid === 0) manifest.pid = cred.pid;
      pid = manifest.pid;
      if (!authorised(cred.uid, pid)) {
        throw new RewireError(
          'EPERM',
          `Cannot restore pid ${pid}: uid ${cred.uid} does not own it`,
        );
      }
      validateManifest(manifest, 'Cannot restore manifest');
      const engine = this.server.engine;
      const restore =
        engine.unclaimedRestoreOf(manifest) ??
        engine.start(manifest, request.deadlineMs || undefined);
      restore.claimed = true;
      return { request, restore };
    } catch (err) {
      if (!(err instanceof RewireError) || err.code === 'EPEER_CLOSED') throw err;
      this.server.log.warn('control.refused', { uid: cred.uid, pid, code: err.code });
      await this.#send([{ body: refusalFrame(err.code, err.message), fds: [] }]);
      return null;
    }
  }

  /** Streams results until the restore is done; sets `#gone` when the client left first. */
  async #follow(restore: Restore): Promise<void> {
    const unsubscribe = restore.subscribe((task) => this.#queue(task));
    try {
      await Promise.race([restore.whenDone(), this.#hangUp()]);
    } catch (err) {
      this.#gone = true;
      this.server.log.warn('control.session_broken', { restore: restore.id, error: err });
    } finally {
      unsubscribe();
    }
  }

  async #readRequest() {
    const deadline = Date.now() + this.server.options.requestTimeoutMs;
    for (;;) {
      const got = recvFds(this.fd, { maxBytes: PACKET_BYTES, maxFds: 0 });
      if (got === null) {
        await this.server.reactor.readable(this.fd, deadline, 'a restore request');
        continue;
      }
      if (got.data.length === 0)
        throw new RewireError('EPEER_CLOSED', 'Client closed before sending a request');
      const frames = this.#reader.push(got.data);
      if (frames.length > 0) {
        const request = decodeControlRequest(frames[0]!);
        if (request.kind !== 'restore') {
          throw new RewireError(
            'EPROTOCOL',
            'Cannot start a session with Ready: send a RestoreRequest first',
          );
        }
        return request.restore;
      }
    }
  }

  #queue(task: EndpointTask): void {
    if (this.#gone) return;
    const fd = task.takeFd();
    this.#queueResult(
      {
        id: task.endpoint.id,
        status: task.state === 'live' ? 'live' : task.state === 'dead' ? 'dead' : 'failed',
        how: task.how,
        code: task.code,
        message: task.message,
        fds: task.endpoint.fds,
        attached: fd === undefined ? 0 : 1,
        peer: task.peer,
      },
      fd,
    );
  }

  /** Queues one result frame with its fd (owned by the session from now on). */
  #queueResult(result: EndpointResult, fd: number | undefined): void {
    this.#outbox.push({
      body: encodeControlReply({ kind: 'endpoint', endpoint: result }),
      fds: fd === undefined ? [] : [fd],
    });
    if (this.#outbox.length === 1) this.#flushing = this.#flushing.then(() => this.#drainOutbox());
  }

  /**
   * Sends what is queued. It first lets the current turn of the event loop finish, so that the
   * endpoints settled by one batch of ready sockets leave in as few packets as possible (up to
   * 253 fds each) instead of one sendmsg per endpoint.
   */
  async #drainOutbox(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const frames = this.#outbox;
    this.#outbox = [];
    try {
      await this.#send(frames);
    } finally {
      for (const f of frames) for (const fd of f.fds) close(fd);
    }
  }

  async #send(frames: Array<{ body: Uint8Array; fds: number[] }>): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (const packet of packFrames(frames)) await this.#sendPacket(packet, deadline);
  }

  async #sendPacket(p: Packet, deadline: number): Promise<void> {
    for (;;) {
      if (this.#gone) return;
      let n: number;
      try {
        n = p.fds.length > 0 ? sendFds(this.fd, p.fds, p.data) : send(this.fd, p.data);
      } catch (err) {
        this.#gone = true;
        throw err;
      }
      if (n >= 0) return;
      await this.server.reactor.writable(this.fd, deadline, 'room on the control socket');
    }
  }

  #onClientBytes(bytes: Uint8Array): void {
    try {
      for (const frame of this.#reader.push(bytes)) {
        if (decodeControlRequest(frame).kind === 'ready') this.#markReady();
      }
    } catch (err) {
      this.server.log.info('control.ignored_bytes', { error: err });
    }
  }

  #markReady(): void {
    this.#isReady = true;
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
  }

  /** Resolves when the process says its fds are in place (Ready), or when it goes away. */
  #ready(): Promise<void> {
    if (this.#isReady) return Promise.resolve();
    return Promise.race([
      new Promise<void>((resolve) => this.#readyWaiters.push(resolve)),
      this.#hangUp(),
    ]);
  }

  /** One watcher per session, shared by the restore and a kept-open session. */
  #hangUp(): Promise<void> {
    this.#hangUpWatch ??= this.#watchForHangUp(Number.POSITIVE_INFINITY);
    return this.#hangUpWatch;
  }

  /**
   * Resolves when the client hangs up, or when the deadline passes without it. A wake-up is
   * only a hint: the socket is peeked, and the wait goes on unless it is at end-of-file.
   */
  async #watchForHangUp(deadline: number): Promise<void> {
    while (!this.#gone) {
      const peek = recvFds(this.fd, { maxBytes: 1, maxFds: 0, flags: MSG.PEEK });
      if (peek === null) {
        try {
          await this.server.reactor.readable(this.fd, deadline, 'the client to hang up');
        } catch {
          return;
        }
        continue;
      }
      if (peek.data.length === 0) {
        this.#gone = true;
        return;
      }
      // After its request a client sends at most Ready. Anything it sends is read at once (left
      // queued, it would hide the end-of-file behind it: the reactor is edge-triggered), and
      // whatever is not a Ready frame is dropped.
      const got = recvFds(this.fd, { maxBytes: PACKET_BYTES, maxFds: 0 });
      if (got) this.#onClientBytes(got.data);
    }
  }

  /**
   * Keeps the session open until the process goes away. A parent daemon with a job id is
   * registered for re-homing once it sends Ready (its fds are in place): connections whose
   * daemon departed are delivered to it here.
   */
  async #keepOpen(manifest: Manifest, processKey: string): Promise<void> {
    const pid = manifest.pid;
    const deliver = (c: { id: EndpointId; peer: EndpointId; fd: number }): boolean => {
      if (this.#gone) return false;
      const result: EndpointResult = {
        id: c.id,
        status: 'live',
        how: 'rehomed',
        fds: [],
        attached: 1,
        peer: c.peer,
      };
      this.#queueResult(result, c.fd);
      return true;
    };
    const open: OpenSession = { pid, processKey, deliver };
    this.server.sessions.set(processKey, open);
    const engine = this.server.engine;
    const isDaemon = manifest.job && engine.config.parentDaemons.includes(manifest.executable);
    const daemon = isDaemon ? { job: manifest.job!, manifest, deliver } : undefined;
    try {
      // Connections are handed to a daemon once its own fds are in place: the agent reads their
      // state from the running daemon to give the new ones the same characteristics.
      await this.#ready();
      if (daemon && !this.#gone) engine.registerDaemon(daemon);
      await this.#hangUp();
    } finally {
      this.#gone = true;
      if (daemon) engine.unregisterDaemon(daemon);
      if (this.server.sessions.get(processKey) === open) this.server.sessions.delete(processKey);
      this.server.log.info('control.session_closed', { pid, process: processKey });
    }
  }

  dispose(): void {
    this.server.reactor.forget(this.fd);
    close(this.fd);
    for (const f of this.#outbox.splice(0)) for (const fd of f.fds) close(fd);
  }
}

function doneFrame(restore: Restore): Uint8Array {
  const c = restore.counts();
  const done = {
    restoreId: restore.id,
    live: c.live,
    dead: c.dead,
    failed: c.failed,
    placementVersion: restore.placementVersion ?? 0n,
  };
  return encodeControlReply({ kind: 'done', done });
}

function refusalFrame(code: string, message: string): Uint8Array {
  const done = { restoreId: '', live: 0, dead: 0, failed: 0, placementVersion: 0n, code, message };
  const reply: ControlReply = { kind: 'done', done };
  return encodeControlReply(reply);
}
