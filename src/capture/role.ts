/**
 * Which side of its connection a captured socket was (the manifest's role, SPEC §4). The
 * kernel does not record who called connect(), so the role is inferred from what the socket
 * shows, and the reason is reported with each socket:
 *
 * - a listening socket is `listen` ('listening');
 * - TCP: a socket on the port of a listening socket of the same process (on the listener's
 *   address, or any address when it listens on the wildcard) was accepted ('listener-port');
 *   else a socket whose local port is outside the ephemeral range while its peer's port is
 *   inside it was accepted ('ephemeral-peer'); anything else connected ('default-connect');
 * - unix: a socket with a name whose peer has none was accepted, since an accepted socket
 *   carries its listener's name; one without a name whose peer has one connected
 *   ('unix-name'); two ends alike (a socketpair) are told apart by inode, the lower one being
 *   `connect` ('unix-inode-order'), so that both ends' captures agree.
 *
 * Known shortcoming: a client that bound a fixed port outside the ephemeral range before
 * connecting to a server port inside the range is read as `accept`, and two ends that both
 * use ports outside the range (and no captured listener) both read as `connect`.
 */
import type { Address, Role } from '../model/types.ts';

export type RoleReason =
  | 'listening'
  | 'listener-port'
  | 'ephemeral-peer'
  | 'default-connect'
  | 'unix-name'
  | 'unix-inode-order';

/** What the role is decided from. */
export interface RoleInput {
  listening: boolean;
  local?: Address;
  remote?: Address;
  inode: number;
  /** The inode of a unix socket's peer, when sock_diag told it. */
  peerInode?: number;
}

export interface RoleContext {
  /** The local addresses of the process's listening sockets. */
  listeners: readonly Address[];
  ephemeral: { low: number; high: number };
}

/** The role of a socket and why. */
export function decideRole(s: RoleInput, ctx: RoleContext): { role: Role; reason: RoleReason } {
  if (s.listening) return { role: 'listen', reason: 'listening' };
  if (s.local?.family === 'unix') return unixRole(s);

  if (ctx.listeners.some((l) => sameListener(l, s.local))) {
    return { role: 'accept', reason: 'listener-port' };
  }
  const ephemeral = (port: number | undefined) =>
    port !== undefined && port >= ctx.ephemeral.low && port <= ctx.ephemeral.high;
  if (!ephemeral(s.local?.port) && ephemeral(s.remote?.port)) {
    return { role: 'accept', reason: 'ephemeral-peer' };
  }
  return { role: 'connect', reason: 'default-connect' };
}

function sameListener(listener: Address, local: Address | undefined): boolean {
  if (local === undefined || listener.family === 'unix' || listener.port !== local.port) {
    return false;
  }
  const wildcard = listener.address === '0.0.0.0' || listener.address === '::';
  return wildcard || listener.address === local.address;
}

function named(a: Address | undefined): boolean {
  return a?.path !== undefined || a?.abstract !== undefined;
}

function unixRole(s: RoleInput): { role: Role; reason: RoleReason } {
  const local = named(s.local);
  const remote = named(s.remote);
  if (local !== remote) return { role: local ? 'accept' : 'connect', reason: 'unix-name' };
  const lower = s.peerInode === undefined || s.inode < s.peerInode;
  return { role: lower ? 'connect' : 'accept', reason: 'unix-inode-order' };
}
