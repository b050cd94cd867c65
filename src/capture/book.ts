/**
 * The agent's captures: the processes it was asked to capture (`GET /v1/processes/:pid/sockets`)
 * are kept by pid, captured again whenever the cluster map is drawn so the map shows their
 * sockets as they are, and dropped once the process is gone (or its pid names another process).
 * The cluster map asks every other agent of the placement for its captures, joins them with
 * this node's (`cluster-map.ts`), and remembers the peers it found, so that a later capture of
 * the same process shows them in its manifest.
 *
 * The book holds no fds between calls. Captures made here never drain: a drain stops the
 * process, which only `rewire capture --drain` on the node does, on purpose.
 */
import type { Logger } from '../log/logger.ts';
import { processKey, sameProcess } from '../model/ids.ts';
import type { Manifest, NodeInfo } from '../model/types.ts';
import type { HandshakeContext } from '../rewire/peer-handshake.ts';
import { RewireError } from '../errors.ts';
import { captureProcess, type CaptureResult } from './capture.ts';
import {
  joinCaptures,
  withJoinedPeers,
  type JoinedPeer,
  type MapConnection,
  type NodeCaptures,
  type UnmatchedEndpoint,
} from './cluster-map.ts';
import { CaptureError } from './errors.ts';
import { queryCaptures } from './peer-query.ts';
import { captureToJson, type CaptureJson } from './view.ts';

/** Captures kept at most; the oldest is dropped first. */
export const MAX_KEPT_CAPTURES = 1024;

export interface CaptureBookOptions {
  nodeId: bigint;
  handshake: HandshakeContext;
  /** The nodes of the current placement. */
  nodes: () => readonly NodeInfo[];
  /** How long another agent has to answer a query. */
  queryMs: number;
  log: Logger;
}

/** What one node contributed to the map. */
export interface MapNodeView {
  nodeId: string;
  processes: number;
  error?: { code: string; message: string };
}

export interface ClusterMapView {
  nodes: MapNodeView[];
  connections: MapConnection[];
  unmatched: UnmatchedEndpoint[];
}

export class CaptureBook {
  readonly #byPid = new Map<number, CaptureResult>();
  #joined = new Map<string, JoinedPeer>();

  constructor(readonly options: CaptureBookOptions) {}

  /**
   * Captures process `pid` (without draining), keeps it, and returns its JSON form with the
   * peers the last cluster map found.
   * @throws {CaptureError} ENOPROC, EZOMBIE, ECAPTURE_DENIED, EVANISHED
   */
  async capture(pid: number): Promise<CaptureJson> {
    const result = await captureProcess(pid, { nodeId: this.options.nodeId });
    this.#keep(result);
    this.options.log.info('capture.done', {
      pid,
      process: processKey(result.manifest.process),
      endpoints: result.manifest.endpoints.length,
    });
    return captureToJson({ ...result, manifest: withJoinedPeers(result.manifest, this.#joined) });
  }

  /** The kept captures, captured again now (never drained: no drained bytes). */
  async manifests(): Promise<Manifest[]> {
    const fresh: Manifest[] = [];
    for (const [pid, before] of [...this.#byPid]) {
      const now = await this.#recapture(pid, before);
      if (now) fresh.push(now.manifest);
    }
    return fresh;
  }

  /** Every node's captures joined: which process on which node is connected to which. */
  async clusterMap(): Promise<ClusterMapView> {
    const own = await this.manifests();
    const nodes: MapNodeView[] = [
      { nodeId: this.options.nodeId.toString(), processes: own.length },
    ];
    const captures: NodeCaptures[] = [{ nodeId: this.options.nodeId, manifests: own }];
    const others = this.options
      .nodes()
      .filter((n) => n.nodeId !== this.options.nodeId && !n.departed);
    const answers = await Promise.all(others.map((n) => this.#ask(n)));
    for (const [i, answer] of answers.entries()) {
      const nodeId = others[i]!.nodeId;
      if ('error' in answer) {
        nodes.push({ nodeId: nodeId.toString(), processes: 0, error: answer.error });
        continue;
      }
      nodes.push({ nodeId: nodeId.toString(), processes: answer.manifests.length });
      captures.push({ nodeId, manifests: answer.manifests });
    }

    const join = joinCaptures(captures);
    this.#joined = join.peers;
    return { nodes, connections: join.connections, unmatched: join.unmatched };
  }

  async #ask(node: NodeInfo): Promise<{ manifests: Manifest[] } | { error: MapNodeView['error'] }> {
    try {
      const deadline = Date.now() + this.options.queryMs;
      return { manifests: await queryCaptures(this.options.handshake, node, deadline) };
    } catch (err) {
      const code = err instanceof RewireError ? err.code : 'EPEER_UNREACHABLE';
      const message = (err as Error).message;
      this.options.log.warn('capture.query_failed', { node: node.nodeId, code, message });
      return { error: { code, message } };
    }
  }

  /** The process captured again, or undefined (and forgotten) when it is gone. */
  async #recapture(pid: number, before: CaptureResult): Promise<CaptureResult | undefined> {
    try {
      const now = await captureProcess(pid, { nodeId: this.options.nodeId });
      if (sameProcess(now.manifest.process, before.manifest.process)) {
        this.#keep(now);
        return now;
      }
    } catch (err) {
      if (!(err instanceof CaptureError)) {
        this.options.log.warn('capture.refresh_failed', { pid, error: err });
      }
    }
    this.#byPid.delete(pid);
    return undefined;
  }

  #keep(result: CaptureResult): void {
    this.#byPid.delete(result.pid);
    this.#byPid.set(result.pid, result);
    if (this.#byPid.size <= MAX_KEPT_CAPTURES) return;
    this.#byPid.delete(this.#byPid.keys().next().value!);
  }
}
