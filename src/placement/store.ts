/**
 * The placement this agent restores against: which node each process runs on now, where
 * each node's agent listens, and which processes replaced which. Versioned: a newer version
 * replaces the whole placement; an older or equal one is refused, so that two agents that
 * disagree find out (the version travels with every handshake).
 */
import { RewireError } from '../errors.ts';
import { processKey } from '../model/ids.ts';
import type { NodeInfo, Placement, ProcessId } from '../model/types.ts';

export class PlacementError extends RewireError {
  override name = 'PlacementError';
}

export class PlacementStore {
  #placement: Placement | undefined;
  #nodes = new Map<bigint, NodeInfo>();
  #where = new Map<string, bigint>();
  #replacedBy = new Map<string, ProcessId>();
  readonly #onChange: Array<(p: Placement) => void> = [];

  constructor(initial?: Placement) {
    if (initial) this.set(initial);
  }

  get current(): Placement | undefined {
    return this.#placement;
  }

  get version(): bigint {
    return this.#placement?.version ?? 0n;
  }

  /** Replaces the placement; throws EPLACEMENT_STALE unless `next.version` is newer. */
  set(next: Placement): void {
    if (this.#placement && next.version <= this.#placement.version) {
      throw new PlacementError(
        'EPLACEMENT_STALE',
        `Cannot set placement: version '${next.version}' is not newer than the current '${this.#placement.version}'`,
      );
    }
    this.#placement = next;
    this.#nodes = new Map(next.nodes.map((n) => [n.nodeId, n]));
    this.#where = new Map(next.processes.map((e) => [processKey(e.process), e.nodeId]));
    this.#replacedBy = new Map(next.replacements.map((r) => [processKey(r.old), r.new]));
    for (const listener of this.#onChange) listener(next);
  }

  onChange(listener: (p: Placement) => void): void {
    this.#onChange.push(listener);
  }

  /** The node a process runs on now, or undefined when the placement does not say. */
  nodeOf(process: ProcessId): bigint | undefined {
    return this.#where.get(processKey(process));
  }

  node(nodeId: bigint): NodeInfo | undefined {
    return this.#nodes.get(nodeId);
  }

  nodes(): NodeInfo[] {
    return [...this.#nodes.values()];
  }

  /** The process that replaced `process` (restarted under a new identity), if any. */
  replacementOf(process: ProcessId): ProcessId | undefined {
    return this.#replacedBy.get(processKey(process));
  }

  isDeparted(nodeId: bigint): boolean {
    return this.#nodes.get(nodeId)?.departed === true;
  }
}
