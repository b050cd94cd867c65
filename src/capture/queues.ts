/**
 * Copying a frozen process's socket queues without consuming them (SPEC §3.10). Every call
 * works on a copy of the process's fd made with pidfd_getfd, which shares the socket with the
 * process: any setting changed here is changed for the process too, so each is put back as it
 * was found before the call returns.
 *
 * The sequence for a drain:
 *
 * 1. `waitQuiet`: reads SIOCINQ and SIOCOUTQ of every connected socket until two reads
 *    `QUIET_INTERVAL_MS` apart agree (what was in flight has landed), or the budget runs out.
 * 2. `peekReceiveQueue`: recv(MSG_PEEK | MSG_DONTWAIT) into a buffer of SIOCINQ bytes. A peek
 *    offset the process set (SO_PEEK_OFF) is moved to 0 for the peek and put back afterwards.
 * 3. `peekSendQueue` (TCP, and only with CAP_NET_ADMIN): TCP_REPAIR on, TCP_REPAIR_QUEUE set
 *    to the send queue, recv(MSG_PEEK) of SIOCOUTQ bytes (everything the peer has not
 *    acknowledged), then the queue selector and repair mode put back as found. Leaving repair
 *    mode uses TCP_REPAIR_OFF_NO_WP so that no window probe is sent, and SO_REUSEADDR is set
 *    again afterwards because leaving repair mode clears it.
 *
 * Buffers are allocated here and handed to the caller, who owns them.
 */
import {
  encodeInt,
  getSockOptRaw,
  MSG,
  queueLengths,
  recv,
  setSockOptRaw,
  SO,
  SOL,
  TCP,
  TCP_QUEUE,
  TCP_REPAIR_MODE,
} from '../../ffi/index.ts';

/** Time between the two reads that must agree for the connections to count as quiet. */
export const QUIET_INTERVAL_MS = 20;

/** How long a drain waits for its connections to go quiet before it copies them anyway. */
export const QUIET_BUDGET_MS = 1000;

function lengthsOf(fds: readonly number[]): string {
  return fds
    .map((fd) => {
      try {
        const q = queueLengths(fd);
        return `${q.inq}/${q.outq}`;
      } catch {
        return '-';
      }
    })
    .join(',');
}

/**
 * Waits until the queue lengths of `fds` are the same in two reads in a row.
 * @returns whether they were, and how long it took
 */
export async function waitQuiet(
  fds: readonly number[],
  budgetMs = QUIET_BUDGET_MS,
): Promise<{ quiet: boolean; waitedMs: number }> {
  const started = Date.now();
  let before = lengthsOf(fds);
  for (;;) {
    await Bun.sleep(QUIET_INTERVAL_MS);
    const now = lengthsOf(fds);
    const waitedMs = Date.now() - started;
    if (now === before) return { quiet: true, waitedMs };
    if (waitedMs >= budgetMs) return { quiet: false, waitedMs };
    before = now;
  }
}

function readInt(fd: number, level: number, name: number): number {
  const raw = getSockOptRaw(fd, level, name, 4);
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getInt32(0, true);
}

function setInt(fd: number, level: number, name: number, value: number): void {
  setSockOptRaw(fd, level, name, encodeInt(value));
}

/** SO_PEEK_OFF, or undefined where the socket has none (TCP before Linux 6.9). */
function peekOffset(fd: number): number | undefined {
  try {
    return readInt(fd, SOL.SOCKET, SO.PEEK_OFF);
  } catch {
    return undefined;
  }
}

function peekOnce(fd: number, buf: Uint8Array): number {
  return recv(fd, buf, MSG.PEEK | MSG.DONTWAIT);
}

/**
 * Copies up to `length` bytes of the receive queue without consuming them. `complete` is false
 * when fewer bytes could be peeked (e.g. a unix stream that carries fds, or urgent data).
 */
export function peekReceiveQueue(
  fd: number,
  length: number,
): { bytes: Uint8Array; complete: boolean } {
  if (length <= 0) return { bytes: new Uint8Array(0), complete: true };

  const buf = new Uint8Array(length);
  const saved = peekOffset(fd);
  let got = 0;
  try {
    if (saved !== undefined && saved > 0) setInt(fd, SOL.SOCKET, SO.PEEK_OFF, 0);
    got = Math.max(0, peekOnce(fd, buf));
    // The kernel stops a peek at some boundaries (an skb that carried fds); a peek offset
    // lets the next peek start where this one ended.
    if (got > 0 && got < length && saved !== undefined) {
      if (saved < 0) setInt(fd, SOL.SOCKET, SO.PEEK_OFF, got);
      for (let n = 1; got < length && n > 0; got += Math.max(0, n)) {
        n = peekOnce(fd, buf.subarray(got));
      }
    }
  } finally {
    if (saved !== undefined && peekOffset(fd) !== saved) setInt(fd, SOL.SOCKET, SO.PEEK_OFF, saved);
  }
  return { bytes: buf.subarray(0, got), complete: got === length };
}

/**
 * Copies the send queue (every byte the peer has not acknowledged, `length` = SIOCOUTQ) in
 * TCP repair mode, and puts repair mode, the queue selector and SO_REUSEADDR back as found.
 * Needs CAP_NET_ADMIN in the socket's network namespace.
 * @throws {SyscallError} when repair mode is refused (EPERM) or the peek fails; the socket's
 *   settings are put back first
 */
export function peekSendQueue(fd: number, length: number): Uint8Array {
  if (length <= 0) return new Uint8Array(0);

  const wasRepair = readInt(fd, SOL.TCP, TCP.REPAIR) !== 0;
  const reuse = readInt(fd, SOL.SOCKET, SO.REUSEADDR);
  const queueBefore = wasRepair ? readInt(fd, SOL.TCP, TCP.REPAIR_QUEUE) : TCP_QUEUE.NONE;
  // Room for one more segment than SIOCOUTQ counted: a peek that does not fit fails whole.
  const buf = new Uint8Array(length + 65536);
  let got = 0;
  try {
    if (!wasRepair) setInt(fd, SOL.TCP, TCP.REPAIR, TCP_REPAIR_MODE.ON);
    setInt(fd, SOL.TCP, TCP.REPAIR_QUEUE, TCP_QUEUE.SEND);
    got = Math.max(0, peekOnce(fd, buf));
  } finally {
    restoreRepair(fd, wasRepair, queueBefore, reuse);
  }
  return buf.slice(0, got);
}

function restoreRepair(fd: number, wasRepair: boolean, queue: number, reuse: number): void {
  if (wasRepair) {
    setInt(fd, SOL.TCP, TCP.REPAIR_QUEUE, queue);
    return;
  }
  setInt(fd, SOL.TCP, TCP.REPAIR_QUEUE, TCP_QUEUE.NONE);
  setInt(fd, SOL.TCP, TCP.REPAIR, TCP_REPAIR_MODE.OFF_NO_WP);
  if (readInt(fd, SOL.SOCKET, SO.REUSEADDR) !== reuse) {
    setInt(fd, SOL.SOCKET, SO.REUSEADDR, reuse);
  }
}
