/**
 * The agent: one per node. Wires the reactor, the placement, the rewiring engine, the peer
 * listener and the control socket together, and keeps the views the API shows (connections,
 * parent-daemon host tables, peers, metrics).
 */
import { CaptureBook, type ClusterMapView } from '../capture/book.ts';
import type { CaptureJson } from '../capture/view.ts';
import type { AgentConfig } from '../config/types.ts';
import { RewireError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { createAgentMetrics, peerStates, type AgentMetrics } from '../metrics/agent-metrics.ts';
import { endpointKey, processKey } from '../model/ids.ts';
import type { Manifest, Placement } from '../model/types.ts';
import { PlacementStore } from '../placement/store.ts';
import { Reactor } from '../reactor/reactor.ts';
import { RewireEngine } from '../rewire/engine.ts';
import type { EndpointTask, Restore } from '../rewire/restore.ts';
import { ControlServer } from '../control/server.ts';
import { version } from '../version.ts';
import type {
  AgentHandle,
  ConnectionFilter,
  ConnectionView,
  HostTableView,
  NodeView,
  PeerState,
  PeerView,
  RestoreView,
} from './handle.ts';

export interface RunningAgent extends AgentHandle {
  readonly controlSocketPath: string;
  /** The port the peer listener bound (useful when configured as 0). */
  readonly peerPort: number;
  readonly engine: RewireEngine;
  stop(): Promise<void>;
}

/** Starts an agent: binds the peer listener and the control socket. */
export async function startAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  const agent = new Agent(config, log.child({ node: config.nodeId.toString() }));
  agent.start();
  return agent;
}

interface PeerRecord {
  state: PeerState;
  lastSeen?: Date;
  lastError?: string;
}

class Agent implements RunningAgent {
  readonly reactor = new Reactor();
  readonly placementStore: PlacementStore;
  readonly engine: RewireEngine;
  readonly control: ControlServer;
  readonly captures: CaptureBook;
  readonly metrics: AgentMetrics = createAgentMetrics();
  readonly startedAt = new Date();
  readonly #connections = new Map<string, ConnectionView>();
  readonly #processTexts = new WeakMap<Restore, string>();
  readonly #nodeTexts = new Map<bigint, string>();
  readonly #peers = new Map<bigint, PeerRecord>();
  peerPort = 0;
  #ready = false;

  constructor(
    readonly config: AgentConfig,
    readonly log: Logger,
  ) {
    this.placementStore = new PlacementStore(config.placement);
    this.engine = new RewireEngine(config, this.placementStore, this.reactor, log, {
      onSettled: (task) => this.#recordSettled(task),
      onRestoreDone: (restore) => this.#recordRestoreDone(restore),
      onHandshake: (seconds) => this.metrics.handshakeSeconds.observe(seconds),
      onSession: (side) => this.metrics.peerSessions.inc({ side }),
      onQuery: () => this.captures.manifests(),
    });
    this.captures = new CaptureBook({
      nodeId: config.nodeId,
      handshake: {
        reactor: this.reactor,
        key: config.clusterKey,
        nodeId: config.nodeId,
        maxFrameBytes: config.maxFrameBytes,
      },
      nodes: () => this.placementStore.nodes(),
      queryMs: config.deadlines.handshakeMs,
      log,
    });
    this.control = new ControlServer(
      {
        runtimeDir: config.runtimeDir,
        maxFrameBytes: config.maxFrameBytes,
        requestTimeoutMs: config.deadlines.handshakeMs,
      },
      this.engine,
      this.reactor,
      log,
    );
    this.placementStore.onChange((p) => this.#placementChanged(p));
    this.metrics.peers.onCollect(() => {
      for (const state of peerStates) this.metrics.peers.set({ state }, 0);
      for (const peer of this.peers()) this.metrics.peers.inc({ state: peer.state });
    });
    this.metrics.fdsHeld.onCollect(() => this.metrics.fdsHeld.set(this.#fdsHeld()));
  }

  get controlSocketPath(): string {
    return this.control.path;
  }

  start(): void {
    this.peerPort = this.engine.listen();
    this.control.start();
    this.#ready = true;
    this.log.info('agent.started', {
      listen: `${this.config.listen.address}:${this.peerPort}`,
      advertise: `${this.config.advertise.address}:${this.config.advertise.port}`,
      control: this.control.path,
    });
  }

  async stop(): Promise<void> {
    this.#ready = false;
    this.control.stop();
    this.engine.stop();
    await this.reactor.close();
    this.log.info('agent.stopped');
  }

  ready(): boolean {
    return this.#ready;
  }

  node(): NodeView {
    return {
      nodeId: this.config.nodeId.toString(),
      name: this.config.nodeName,
      advertise: {
        address: this.config.advertise.address,
        port: this.config.advertise.port || this.peerPort,
      },
      version,
      startedAt: this.startedAt.toISOString(),
      placementVersion: this.placementStore.current ? this.placementStore.version.toString() : null,
      localPolicy: this.config.localPolicy,
    };
  }

  peers(): PeerView[] {
    return this.placementStore
      .nodes()
      .filter((n) => n.nodeId !== this.config.nodeId)
      .map((n) => {
        const record = this.#peers.get(n.nodeId);
        const state: PeerState = n.departed ? 'departed' : (record?.state ?? 'unknown');
        return {
          nodeId: n.nodeId.toString(),
          name: n.name,
          address: n.address,
          port: n.port,
          state,
          lastSeen: record?.lastSeen?.toISOString(),
          lastError: record?.lastError,
        };
      });
  }

  placement(): Placement | undefined {
    return this.placementStore.current;
  }

  setPlacement(placement: Placement): void {
    this.placementStore.set(placement);
    this.log.info('placement.set', { version: placement.version, nodes: placement.nodes.length });
  }

  startRestore(manifest: Manifest, options: { deadlineMs?: number } = {}): RestoreView {
    const restore = this.engine.start(manifest, options.deadlineMs);
    void restore.whenDone().then(() => this.#scheduleUnclaimedCleanup(restore));
    return restore.view();
  }

  restores(): RestoreView[] {
    return [...this.engine.restores.values()].map((r) => r.view());
  }

  restore(id: string): RestoreView {
    return this.#find(id).view();
  }

  cancelRestore(id: string): RestoreView {
    const restore = this.#find(id);
    this.engine.cancel(restore);
    return restore.view();
  }

  connections(filter: ConnectionFilter = {}): ConnectionView[] {
    return [...this.#connections.values()].filter(
      (c) =>
        (filter.process === undefined || c.process === filter.process) &&
        (filter.node === undefined || c.peerNode === filter.node || c.localNode === filter.node) &&
        (filter.state === undefined || c.state === filter.state),
    );
  }

  hosts(): HostTableView[] {
    const daemons = new Map<string, HostTableView>();
    for (const c of this.#connections.values()) {
      if (!this.config.parentDaemons.includes(c.executable)) continue;
      const table = daemons.get(c.process) ?? {
        process: c.process,
        executable: c.executable,
        pid: c.pid,
        entries: [],
      };
      daemons.set(c.process, table);
      if (c.sameNode || c.peerNode === undefined || c.state !== 'live' || c.peer === undefined)
        continue;
      table.entries.push({
        remoteNode: c.peerNode,
        fd: c.fds[0] ?? -1,
        endpoint: c.endpoint,
        peer: c.peer,
        peerBirthNode: c.peerBirthNode ?? '',
      });
    }
    return [...daemons.values()];
  }

  captureProcess(pid: number): Promise<CaptureJson> {
    return this.captures.capture(pid);
  }

  clusterConnections(): Promise<ClusterMapView> {
    return this.captures.clusterMap();
  }

  metricsText(): string {
    return this.metrics.registry.text();
  }

  #find(id: string): Restore {
    const restore = this.engine.restores.get(id);
    if (!restore) throw new RewireError('ERESTORE_NOT_FOUND', `No restore with id '${id}'`);
    return restore;
  }

  /** An API-started restore that no process claims gives its fds back after its deadline. */
  #scheduleUnclaimedCleanup(restore: Restore): void {
    const wait = Math.max(0, restore.deadline - Date.now());
    setTimeout(() => {
      if (restore.claimed) return;
      this.log.warn('restore.unclaimed', { restore: restore.id, process: restore.processKey });
      this.engine.forget(restore);
    }, wait).unref();
  }

  #fdsHeld(): number {
    let n = 0;
    for (const r of this.engine.restores.values())
      for (const t of r.tasks) if (t.fd !== undefined) n++;
    return n;
  }

  #recordSettled(task: EndpointTask): void {
    this.metrics.endpoints.inc({ result: task.state === 'pending' ? 'failed' : task.state });
    this.#notePeer(task);
    if (task.state === 'failed') return;
    const view = this.#connectionView(task);
    this.#connections.set(view.endpoint, view);
  }

  #recordRestoreDone(restore: Restore): void {
    const dead = restore.counts().dead > 0;
    const result = restore.state === 'done' ? (dead ? 'partial' : 'done') : restore.state;
    if (result === 'running') return;
    this.metrics.restores.inc({ result });
    this.metrics.restoreSeconds.observe((Date.now() - restore.startedAt.getTime()) / 1000);
  }

  #notePeer(task: EndpointTask): void {
    if (task.how !== 'remote' && task.code !== 'EPEER_UNREACHABLE') return;
    const node =
      task.peerNode ??
      (task.endpoint.peer ? this.placementStore.nodeOf(task.endpoint.peer.process) : undefined);
    if (node === undefined) return;
    if (task.how === 'remote') this.#peers.set(node, { state: 'reachable', lastSeen: new Date() });
    else
      this.#peers.set(node, {
        ...this.#peers.get(node),
        state: 'unreachable',
        lastError: task.message,
      });
  }

  /**
   * A connection as the API shows it. The table keeps one per restored connection for as long
   * as the agent runs, so the texts that repeat (process key, node ids) are shared, not made
   * again for each.
   */
  #connectionView(task: EndpointTask): ConnectionView {
    const m = task.restore.manifest;
    const local = this.config.nodeId;
    let process = this.#processTexts.get(task.restore);
    if (process === undefined)
      this.#processTexts.set(task.restore, (process = processKey(m.process)));
    return {
      endpoint: task.key,
      peer: task.peer ? endpointKey(task.peer) : undefined,
      process,
      executable: m.executable,
      pid: m.pid,
      state: task.state === 'live' ? 'live' : 'dead',
      how: task.how ?? 'dead',
      fds: task.endpoint.fds,
      localNode: this.#nodeText(local),
      peerNode: task.peerNode === undefined ? undefined : this.#nodeText(task.peerNode),
      localBirthNode: this.#nodeText(m.process.hostId),
      peerBirthNode: task.peer ? this.#nodeText(task.peer.process.hostId) : undefined,
      sameNode: task.peerNode === local,
      restoreId: task.restore.id,
    };
  }

  #nodeText(id: bigint): string {
    let text = this.#nodeTexts.get(id);
    if (text === undefined) this.#nodeTexts.set(id, (text = id.toString()));
    return text;
  }

  #placementChanged(p: Placement): void {
    const departed = new Set(p.nodes.filter((n) => n.departed).map((n) => n.nodeId.toString()));
    if (departed.size === 0) return;
    for (const [key, c] of this.#connections) {
      if (c.peerNode !== undefined && departed.has(c.peerNode) && c.state === 'live') {
        this.#connections.set(key, { ...c, state: 'dead', how: 'dead' });
      }
    }
  }
}
