/**
 * The drain step of a capture (`--drain`), run while the process is frozen: wait for its
 * connections to go quiet, then copy each connected stream socket's receive queue, and the
 * unacknowledged bytes of each TCP send queue where this process has CAP_NET_ADMIN, without
 * consuming any byte (see `queues.ts` for how). What was copied and what was not, and why, is
 * reported per socket and for the capture as a whole.
 *
 * Unix sockets have no send queue of their own (a writer's bytes wait in the reader's receive
 * queue), so draining both ends' receive queues holds everything. Seqpacket receive queues
 * are not copied: the manifest's drained bytes cannot keep record boundaries.
 */
import { queueLengths } from '../../ffi/index.ts';
import type { DescribedSocket } from './describe.ts';
import { CAP_NET_ADMIN, hasCapability } from './proc.ts';
import { peekReceiveQueue, peekSendQueue, waitQuiet } from './queues.ts';

/** What the drain copied of one socket. */
export interface SocketDrain {
  /** The receive-queue bytes (the endpoint's `drained`). */
  receive: Uint8Array;
  receiveComplete: boolean;
  receiveSkipped?: string;
  /** The send-queue bytes the peer had not acknowledged, when they could be copied. */
  send?: Uint8Array;
  sendSkipped?: string;
}

/** Which queues the capture holds, over all its sockets. */
export interface QueueSummary {
  receive: boolean;
  send: boolean;
  /** Why a queue is not held completely; absent when both are. */
  reason?: string;
}

export interface DrainOutcome {
  quiet: boolean;
  waitedMs: number;
  sockets: Map<number, SocketDrain>;
  queues: QueueSummary;
}

/** A socket whose queues a drain reads: `fd` is a copy of the process's fd (borrowed). */
export interface DrainInput {
  fd: number;
  socket: DescribedSocket;
}

/** Waits for quiet and copies the queues of every connected socket in `inputs`. */
export async function drainSockets(inputs: readonly DrainInput[]): Promise<DrainOutcome> {
  const connected = inputs.filter((i) => !i.socket.listening);
  const { quiet, waitedMs } = await waitQuiet(connected.map((i) => i.fd));
  const netAdmin = hasCapability(CAP_NET_ADMIN);

  const sockets = new Map<number, SocketDrain>();
  for (const input of connected) {
    refreshQueues(input);
    sockets.set(input.socket.inode, drainOne(input, netAdmin));
  }
  return { quiet, waitedMs, sockets, queues: summarize(sockets, connected, quiet) };
}

/** Reads the queue lengths again: bytes may have landed while the drain waited for quiet. */
function refreshQueues({ fd, socket }: DrainInput): void {
  try {
    const q = queueLengths(fd);
    socket.queues = { receive: q.inq, send: q.outq };
  } catch {
    // No queues in this state (reset by the peer): the earlier reading stands.
  }
}

function drainOne({ fd, socket }: DrainInput, netAdmin: boolean): SocketDrain {
  const out: SocketDrain = { receive: new Uint8Array(0), receiveComplete: true };
  const inq = socket.queues?.receive ?? 0;
  if (socket.type !== 'stream' && inq > 0) {
    out.receiveComplete = false;
    out.receiveSkipped = `${inq} bytes of seqpacket records not copied: drained bytes cannot keep record boundaries`;
  } else {
    const peeked = peekReceiveQueue(fd, inq);
    out.receive = peeked.bytes;
    out.receiveComplete = peeked.complete;
    if (!peeked.complete) {
      out.receiveSkipped = `only ${peeked.bytes.length} of ${inq} bytes could be peeked`;
    }
  }
  if (socket.family !== 'unix') copySendQueue(fd, socket, netAdmin, out);
  return out;
}

function copySendQueue(
  fd: number,
  socket: DescribedSocket,
  netAdmin: boolean,
  out: SocketDrain,
): void {
  const outq = socket.queues?.send ?? 0;
  if (outq === 0) {
    out.send = new Uint8Array(0);
    return;
  }
  if (!netAdmin) {
    out.sendSkipped = `${outq} unacknowledged bytes not copied: TCP repair mode needs CAP_NET_ADMIN`;
    return;
  }
  if (socket.tcpState !== 'ESTABLISHED') {
    out.sendSkipped = `${outq} unacknowledged bytes not copied: TCP repair mode needs an established connection, not ${socket.tcpState}`;
    return;
  }
  try {
    out.send = peekSendQueue(fd, outq);
  } catch (err) {
    out.sendSkipped = `${outq} unacknowledged bytes not copied: ${(err as Error).message}`;
  }
}

function summarize(
  sockets: Map<number, SocketDrain>,
  inputs: readonly DrainInput[],
  quiet: boolean,
): QueueSummary {
  const reasons: string[] = [];
  if (!quiet) reasons.push('the connections did not go quiet: bytes may still have been in flight');
  let receive = true;
  let send = true;
  for (const { socket } of inputs) {
    const d = sockets.get(socket.inode)!;
    if (!d.receiveComplete) {
      receive = false;
      reasons.push(`conn ${socket.inode}: ${d.receiveSkipped}`);
    }
    if (d.sendSkipped !== undefined) {
      send = false;
      reasons.push(`conn ${socket.inode}: ${d.sendSkipped}`);
    }
  }
  const summary: QueueSummary = { receive: receive && quiet, send: send && quiet };
  if (reasons.length > 0) summary.reason = reasons.join('; ');
  return summary;
}
