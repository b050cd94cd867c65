/**
 * struct tcp_info (getsockopt TCP_INFO), read for the few fields capture needs: the state, and
 * for a listener the backlog it was given and the connections waiting to be accepted (the
 * kernel reports those two in tcpi_sacked and tcpi_unacked while a socket listens).
 */
import { SOL, TCP, TCP_STATES } from './constants.ts';
import { getSockOptRaw } from './sockopt.ts';

const STATE_OFFSET = 0;
const UNACKED_OFFSET = 24;
const SACKED_OFFSET = 28;
const LISTEN = TCP_STATES.indexOf('LISTEN');

export interface TcpInfo {
  state: (typeof TCP_STATES)[number];
  /** Listener only: the backlog as listen() set it (capped at net.core.somaxconn). */
  backlog?: number;
  /** Listener only: connections completed and waiting for accept(). */
  pending?: number;
}

/** The TCP state of `fd`, and its backlog when it listens. */
export function tcpInfo(fd: number): TcpInfo {
  const raw = getSockOptRaw(fd, SOL.TCP, TCP.INFO, 32);
  const state = TCP_STATES[raw[STATE_OFFSET] ?? 0] ?? 'UNKNOWN';
  if (raw[STATE_OFFSET] !== LISTEN || raw.length < SACKED_OFFSET + 4) return { state };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return {
    state,
    backlog: view.getUint32(SACKED_OFFSET, true),
    pending: view.getUint32(UNACKED_OFFSET, true),
  };
}
