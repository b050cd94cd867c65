/**
 * The client side of the control socket, for programs running on Bun (and `rewire exec`).
 * It is synchronous: each call blocks with a deadline (SO_RCVTIMEO), which suits a process
 * that has nothing else to do until its sockets are back.
 *
 * Ownership: the fds in the returned results belong to the caller.
 */
import {
  close,
  connect,
  recvFds,
  sendFds,
  setTimevalOption,
  socket,
  send,
  SyscallError,
} from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import { decodeControlReply, encodeControlRequest } from '../model/codec.ts';
import type { EndpointResult, RestoreDone } from '../model/frames.ts';
import type { Manifest } from '../model/types.ts';
import { FrameReader } from '../wire/framer.ts';
import { packFrames, PACKET_BYTES } from './packets.ts';

export interface DeliveredEndpoint {
  result: EndpointResult;
  /** The fd attached to this result, owned by the caller; undefined when none. */
  fd: number | undefined;
}

export interface RestoreOutcome {
  endpoints: DeliveredEndpoint[];
  done: RestoreDone;
}

export class ControlClientError extends RewireError {
  override name = 'ControlClientError';
}

/**
 * One packet from the agent, blocking up to SO_RCVTIMEO; null when the wait timed out or a
 * signal interrupted it (the caller checks its deadline and tries again).
 */
function receive(fd: number): ReturnType<typeof recvFds> {
  try {
    return recvFds(fd, { maxBytes: PACKET_BYTES });
  } catch (err) {
    if (err instanceof SyscallError && err.errnoName === 'EINTR') return null;
    throw err;
  }
}

/** An open control session with the local agent. */
export class ControlSession implements Disposable {
  readonly #fd: number;
  readonly #reader: FrameReader;
  readonly #fds: number[] = [];
  #closed = false;

  private constructor(fd: number, maxFrameBytes: number) {
    this.#fd = fd;
    this.#reader = new FrameReader(maxFrameBytes);
  }

  /** Connects to the agent's control socket. Throws EAGENT_UNREACHABLE when nobody listens. */
  static open(path: string, maxFrameBytes = 256 * 1024 * 1024): ControlSession {
    const fd = socket('unix', 'seqpacket');
    try {
      connect(fd, { family: 'unix', path });
    } catch (err) {
      close(fd);
      const errno = err instanceof SyscallError ? err.errnoName : '';
      throw new ControlClientError(
        'EAGENT_UNREACHABLE',
        `Cannot reach the local agent at '${path}': ${errno || (err as Error).message}; is \`rewire agent\` running?`,
        { cause: err },
      );
    }
    return new ControlSession(fd, maxFrameBytes);
  }

  /** Sends a restore request for `manifest`. */
  requestRestore(
    manifest: Manifest,
    options: { deadlineMs?: number; keepOpen?: boolean } = {},
  ): void {
    const body = encodeControlRequest({
      kind: 'restore',
      restore: {
        manifest,
        deadlineMs: options.deadlineMs ?? 0,
        keepOpen: options.keepOpen ?? false,
      },
    });
    for (const p of packFrames([{ body, fds: [] }])) {
      if (p.fds.length > 0) sendFds(this.#fd, p.fds, p.data);
      else send(this.#fd, p.data);
    }
  }

  /**
   * Waits up to `timeoutMs` for the next reply. Returns null at end-of-file; throws
   * EDEADLINE when nothing arrives in time.
   */
  next(timeoutMs: number): { endpoint: DeliveredEndpoint } | { done: RestoreDone } | null {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.#takeFrame();
      if (frame) return frame;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new ControlClientError(
          'EDEADLINE',
          `No answer from the local agent within ${timeoutMs} ms`,
        );
      setTimevalOption(this.#fd, 'SO_RCVTIMEO', Math.max(1000, left * 1000));
      const got = receive(this.#fd);
      if (got === null) continue;
      if (got.data.length === 0 && got.fds.length === 0) return null;
      this.#fds.push(...got.fds);
      this.#pending.push(...this.#reader.push(got.data));
    }
  }

  readonly #pending: Uint8Array[] = [];

  #takeFrame(): { endpoint: DeliveredEndpoint } | { done: RestoreDone } | null {
    const body = this.#pending.shift();
    if (!body) return null;
    const reply = decodeControlReply(body);
    if (reply.kind === 'done') return { done: reply.done };
    const result = reply.endpoint;
    const fd = result.attached > 0 ? this.#fds.shift() : undefined;
    return { endpoint: { result, fd } };
  }

  /** Reads replies until the final status; returns every endpoint with its fd. */
  collect(timeoutMs: number): RestoreOutcome {
    const endpoints: DeliveredEndpoint[] = [];
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const reply = this.next(Math.max(1, deadline - Date.now()));
        if (reply === null) {
          throw new ControlClientError(
            'EAGENT_LOST',
            'The local agent closed the session before the restore finished',
          );
        }
        if ('done' in reply) return { endpoints, done: reply.done };
        endpoints.push(reply.endpoint);
      }
    } catch (err) {
      for (const e of endpoints) if (e.fd !== undefined) close(e.fd);
      throw err;
    }
  }

  /**
   * Gives up the session's socket without closing it, for a process that keeps the session
   * (keep_open) to receive connections later. Throws when replies are still unread.
   */
  detach(): number {
    if (this.#pending.length > 0 || this.#fds.length > 0) {
      throw new ControlClientError(
        'ESESSION_BUSY',
        'Cannot detach the control session: replies are still unread',
      );
    }
    this.#closed = true;
    return this.#fd;
  }

  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds.splice(0)) close(fd);
    close(this.#fd);
  }
}

/**
 * Restores `manifest` through the local agent and returns the results with their fds. With
 * `keepOpen`, the session stays open and its socket is returned as `session` (owned by the
 * caller) for connections the agent hands over later.
 */
export function restoreThroughAgent(
  path: string,
  manifest: Manifest,
  options: { deadlineMs?: number; keepOpen?: boolean } = {},
): RestoreOutcome & { session?: number } {
  using session = ControlSession.open(path);
  const deadlineMs = options.deadlineMs ?? 60_000;
  session.requestRestore(manifest, { deadlineMs, keepOpen: options.keepOpen ?? false });
  const outcome = session.collect(deadlineMs + 5_000);
  return options.keepOpen ? { ...outcome, session: session.detach() } : outcome;
}

/**
 * Tells the agent, on a kept-open session, that this process's restored fds are in place, so
 * that it may hand over connections from now on (a parent daemon receiving re-homed ones).
 */
export function sendReady(sessionFd: number): void {
  const body = encodeControlRequest({ kind: 'ready' });
  for (const p of packFrames([{ body, fds: [] }])) send(sessionFd, p.data);
}
