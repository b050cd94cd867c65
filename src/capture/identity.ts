/**
 * The ids a capture gives (SPEC §2). A process is `{hostId: the capturing node's id, pid,
 * birthTime, generation: 1}`, where birthTime is the process's start time in clock ticks since
 * the node booted (/proc/PID/stat field 22). An endpoint's connection number is the inode of
 * its socket (32 bits, unique on the node while the socket lives).
 *
 * Both stay the same for the life of the process and the socket, so repeated captures name an
 * endpoint the same way, and a capture that finds a peer on its node names it exactly as the
 * peer's own capture does. The birth time is kept in ticks rather than made absolute: the boot
 * time the kernel reports moves with clock adjustments, which would change the id between two
 * captures.
 */
import type { EndpointId, ProcessId } from '../model/types.ts';

/** The generation of a captured process: the first life of its id. */
export const CAPTURED_GENERATION = 1;

export function capturedProcessId(nodeId: bigint, pid: number, startTicks: bigint): ProcessId {
  return { hostId: nodeId, pid, birthTime: startTicks, generation: CAPTURED_GENERATION };
}

export function capturedEndpointId(process: ProcessId, inode: number): EndpointId {
  return { process, conn: inode >>> 0 };
}
