/**
 * The other end of each captured connection, when it is on this node. sock_diag names the
 * peer socket's inode (a unix socket's peer directly; for TCP, the socket whose two addresses
 * are this one's swapped), and the /proc fd tables name the processes holding that inode. So a
 * capture names a peer it did not capture, with the id the peer's own capture would give it.
 * Peers on other nodes are left to the cluster map (`cluster-map.ts`).
 *
 * Lookups happen in the capturing agent's network namespace: a process in another namespace
 * finds no local peers this way. A peer socket held by several processes (inherited across
 * fork) is given to the lowest pid; all of them are reported.
 */
import { tcpSocketInode, type TcpEnd } from '../../ffi/index.ts';
import type { Address, ProcessId } from '../model/types.ts';
import type { DescribedSocket } from './describe.ts';
import { capturedProcessId } from './identity.ts';
import { findHolders, readComm, readStat } from './proc.ts';

/** The peer of one captured socket, found on this node. */
export interface LocalPeer {
  /** The peer socket's inode: its endpoint's connection number. */
  inode: number;
  /** Every process that holds the peer socket (ascending); the first is the peer. */
  pids: number[];
  process?: ProcessId;
  executable?: string;
}

/**
 * The local peers of `sockets`, keyed by the captured socket's inode. A socket whose peer
 * socket is not on this node has no entry; one whose peer socket no readable process holds
 * has an entry without `process`. `copier` holds copies of the captured sockets while it
 * looks (the capturing process): it is not counted as a holder of those.
 */
export function findLocalPeers(
  sockets: readonly DescribedSocket[],
  nodeId: bigint,
  copier?: number,
): Map<number, LocalPeer> {
  const captured = new Set(sockets.map((s) => s.inode));
  const peerInodes = new Map<number, number>();
  for (const s of sockets) {
    const inode = s.listening ? undefined : peerInodeOf(s);
    if (inode !== undefined) peerInodes.set(s.inode, inode);
  }

  const holders = findHolders(new Set(peerInodes.values()));
  const peers = new Map<number, LocalPeer>();
  for (const [own, inode] of peerInodes) {
    const copies = captured.has(inode);
    const pids = (holders.get(inode) ?? []).filter((pid) => !copies || pid !== copier);
    peers.set(own, { inode, pids, ...holderIdentity(pids[0], nodeId) });
  }
  return peers;
}

function peerInodeOf(s: DescribedSocket): number | undefined {
  if (s.family === 'unix') return s.peerInode;
  const local = tcpEnd(s.local);
  const remote = tcpEnd(s.remote);
  if (local === undefined || remote === undefined) return undefined;
  try {
    return tcpSocketInode(remote, local);
  } catch {
    return undefined; // no inet_diag in this kernel: peers come from the cluster map only
  }
}

function tcpEnd(a: Address | undefined): TcpEnd | undefined {
  if (a === undefined || a.family === 'unix' || a.address === undefined) return undefined;
  return { family: a.family, address: a.address, port: a.port ?? 0 };
}

function holderIdentity(
  pid: number | undefined,
  nodeId: bigint,
): { process?: ProcessId; executable?: string } {
  if (pid === undefined) return {};
  try {
    const { startTicks } = readStat(pid);
    return { process: capturedProcessId(nodeId, pid, startTicks), executable: readComm(pid) };
  } catch {
    return {}; // exited since its fd table was read
  }
}
