/**
 * The accepting half of a restore (SPEC §3.1, §3.4): the peer listener, the acceptor's side of
 * the handshake, and the matching of an inbound Attach to the endpoint waiting for it. An
 * Attach may arrive before its endpoint registers; it is held until the handshake deadline.
 * A changed peer is accepted only when the placement explains it; every refusal names the
 * reason to the dialer and is kept on the waiting endpoint, which reports it if its deadline
 * passes. A dialer that fails authentication is reset without a word.
 */
import { isIPv6 } from 'node:net';

import { accept, bind, close, getSockName, listen, setLinger, socket } from '../../ffi/index.ts';
import type { AgentConfig } from '../config/types.ts';
import { RewireError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { endpointKey, processKey, sameEndpoint, sameProcess } from '../model/ids.ts';
import type { EndpointId, Manifest } from '../model/types.ts';
import type { PlacementStore } from '../placement/store.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { acceptorHandshake, sendFrame, type HandshakeContext } from './peer-handshake.ts';
import type { EndpointTask } from './restore.ts';
import { describeReport, finishSocketState, growSendBuffer, towardPeer } from './socket-state.ts';

export interface AcceptContext {
  config: AgentConfig;
  placement: PlacementStore;
  reactor: Reactor;
  hs: HandshakeContext;
  log: Logger;
  /** A peer agent asked for this node's captures (the cluster map): the manifests to send. */
  onQuery?: (node: bigint) => Promise<Manifest[]>;
}

export class Acceptor {
  readonly #awaiting = new Map<string, EndpointTask>();
  readonly #early = new Map<string, Array<() => void>>();
  #listenFd = -1;
  #stopped = false;

  constructor(readonly ctx: AcceptContext) {}

  /** Binds the peer listener and starts accepting other agents. Returns the bound port. */
  listen(): number {
    const { address, port } = this.ctx.config.listen;
    const family = isIPv6(address) ? 'inet6' : 'inet';
    const fd = socket(family, 'stream', { nonblock: true });
    try {
      bind(fd, { family, address, port });
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
    if (this.#listenFd < 0) return;
    this.ctx.reactor.forget(this.#listenFd);
    close(this.#listenFd);
    this.#listenFd = -1;
  }

  /** `task` waits for its peer to dial in; an Attach held for it is released now. */
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

  async #acceptLoop(listenFd: number): Promise<void> {
    while (!this.#stopped) {
      let got: ReturnType<typeof accept>;
      try {
        got = accept(listenFd, { nonblock: true });
      } catch (err) {
        if (this.#stopped) return;
        this.ctx.log.error('peer.accept_failed', { error: err });
        await Bun.sleep(100);
        continue;
      }
      if (got) {
        void this.#inbound(got.fd, got.peer);
        continue;
      }
      try {
        await this.ctx.reactor.readable(listenFd, Date.now() + 3_600_000, 'peer connections');
      } catch {
        if (this.#stopped) return;
      }
    }
  }

  async #inbound(fd: number, from: unknown): Promise<void> {
    let handed = false;
    const deadline = Date.now() + this.ctx.config.deadlines.handshakeMs;
    try {
      const request = await acceptorHandshake(this.ctx.hs, fd, deadline);
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
        this.ctx.log.warn('peer.refused', {
          endpoint: endpointKey(attach.to),
          from: endpointKey(attach.from),
          node: dialerNode,
          code: refusal.code,
          message: refusal.message,
        });
        await sendFrame(this.ctx.hs, fd, { kind: 'refused', refused: refusal }, deadline);
        return;
      }
      handed = await this.#completeInbound(task!, fd, attach, dialerNode, deadline);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EAUTH') resetOnClose(fd);
      const level = code === 'EAUTH' ? 'warn' : 'info';
      this.ctx.log[level]('peer.handshake_failed', { from: from as object, code, error: err });
    } finally {
      this.ctx.reactor.forget(fd);
      if (!handed) close(fd);
    }
  }

  /** Answers a peer agent's Query with this node's captures; the connection then closes. */
  async #answerQuery(fd: number, dialerNode: bigint, deadline: number): Promise<void> {
    const manifests = (await this.ctx.onQuery?.(dialerNode)) ?? [];
    await sendFrame(this.ctx.hs, fd, { kind: 'captures', captures: { manifests } }, deadline);
    this.ctx.log.debug('peer.query_answered', { node: dialerNode, processes: manifests.length });
  }

  async #completeInbound(
    task: EndpointTask,
    fd: number,
    attach: { from: EndpointId; drained: Uint8Array },
    dialerNode: bigint,
    deadline: number,
  ): Promise<boolean> {
    this.#awaiting.delete(task.key);
    try {
      const accepted = {
        endpoint: task.endpoint.id,
        drained: task.endpoint.drained,
        placementVersion: this.ctx.placement.version,
      };
      const refill = towardPeer(attach.drained, task.endpoint);
      growSendBuffer(fd, refill.length);
      await sendFrame(this.ctx.hs, fd, { kind: 'accepted', accepted }, deadline, refill);
      const family = isIPv6(this.ctx.config.listen.address) ? 'inet6' : 'inet';
      const report = finishSocketState(fd, task.endpoint, family, task.pids());
      return task.settle({
        state: 'live',
        how: 'remote',
        fd,
        peer: attach.from,
        peerNode: dialerNode,
        message: describeReport(report),
      });
    } catch (err) {
      if (!task.settled && task.restore.state === 'running') this.#awaiting.set(task.key, task);
      task.lastProblem = (err as Error).message;
      throw err;
    }
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
        const timer = setTimeout(resolve, ms);
        const list = this.#early.get(key) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
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

function unknownEndpoint(to: EndpointId): { code: string; message: string } {
  return {
    code: 'EUNKNOWN_ENDPOINT',
    message: `No process on this node registered endpoint '${endpointKey(to)}'`,
  };
}
