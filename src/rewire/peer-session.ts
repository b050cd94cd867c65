/**
 * Sessions between agents (SPEC §5): one authenticated TCP connection per pair of agents that
 * carries, in batches, what used to take a handshake on every restored connection.
 *
 *   dialer                                   acceptor
 *   session: Offers[{ticket, from, to, version, drained_d, wait}, ...] ->
 *   data connection: "RWT2" + ticket  ->     (reads exactly the 20-byte record)
 *                                            (matches ticket to offer, offer to endpoint)
 *   data connection:                 <-      drained_d, raw (into the dialer's receive queue)
 *   session:                         <-      Answers[{ticket, Accepted{drained_a} | Refused}]
 *   data connection: drained_a, raw  ->      (into the acceptor's receive queue)
 *
 * The data connection is the restored connection. Its ticket is 16 random bytes used once,
 * made known to the acceptor only over a session whose dialer proved the cluster key, so the
 * acceptor hands on a connection only when an authenticated agent named it; nothing but the
 * record is read from it. Offers and answers made in one turn of the event loop go out as
 * one frame.
 */
import { close } from '../../ffi/index.ts';
import { DeadlineError, ProtocolError } from '../errors.ts';
import { decodePeerFrame, encodePeerFrame } from '../model/codec.ts';
import type { Answer, Offer } from '../model/frames.ts';
import { endpointKey } from '../model/ids.ts';
import type { EndpointId } from '../model/types.ts';
import type { FrameChannel } from '../wire/channel.ts';
import { ticketKey } from '../wire/opening.ts';
import { peerWentAway } from '../wire/stream.ts';

/** Offers or answers queued past this many bytes go out at once instead of at the turn's end. */
const BATCH_BYTES = 1 << 20;
/**
 * How much sooner than the dialer's deadline (sent with each offer) the acceptor must have
 * handed a connection on, so that its answer arrives while the dialer still waits.
 */
export const ANSWER_MARGIN_MS = 250;
/** A dialer's session with nothing pending closes after this long. */
const IDLE_CLOSE_MS = 500;
const SWEEP_MS = 100;

/** Collects items during one turn of the event loop and sends them as one frame. */
class Batch<T> {
  #items: T[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(readonly send: (items: T[]) => void) {}

  add(item: T, bytes: number): void {
    this.#items.push(item);
    this.#bytes += bytes;
    if (this.#bytes >= BATCH_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    this.send(items);
  }
}

interface PendingOffer {
  resolve: (answer: Answer) => void;
  reject: (err: Error) => void;
  deadline: number;
  to: EndpointId;
}

/** The dialer's side of a session with the agent of node `node`. */
export class DialerSession {
  readonly #pending = new Map<string, PendingOffer>();
  readonly #offers: Batch<Offer>;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #idleSince = Date.now();
  /** Dials that took this session and have not offered on it yet. */
  #holds = 0;
  #closed = false;

  constructor(
    readonly ch: FrameChannel,
    readonly node: bigint,
  ) {
    this.#offers = new Batch((offers) => ch.write(encodePeerFrame({ kind: 'offers', offers })));
    ch.onFail((err) => this.#end(lostError(err, node)));
    void this.#readAnswers();
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Keeps the session from closing as idle while a dial prepares its data connection (a
   * connect may take longer than the idle time); call the returned function once it offered.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      this.#idleSince = Date.now();
    };
  }

  /** Offers a connection; resolves with the acceptor's answer, by `deadline`. */
  offer(offer: Offer, deadline: number): Promise<Answer> {
    if (this.#closed) {
      // Closed while idle, between the dial taking it and offering on it: the dial tries again.
      return Promise.reject(
        new ProtocolError(`The session with node '${this.node}' closed`, 'ESESSION_CLOSED'),
      );
    }
    const key = ticketKey(offer.ticket);
    return new Promise<Answer>((resolve, reject) => {
      this.#pending.set(key, { resolve, reject, deadline, to: offer.to });
      this.#offers.add(offer, offer.drained.length + 96);
    });
  }

  /** Closes the session; pending offers fail with `reason`. */
  close(reason = 'the session was closed'): void {
    this.#end(
      new ProtocolError(`Session with node '${this.node}' ended: ${reason}`, 'EPEER_AGENT_LOST'),
    );
  }

  async #readAnswers(): Promise<void> {
    try {
      for (;;) {
        const f = decodePeerFrame(await this.ch.next(Infinity, 'answers'));
        if (f.kind !== 'answers') {
          throw new ProtocolError(
            `Unexpected ${f.kind} frame from node '${this.node}' in a session`,
          );
        }
        for (const answer of f.answers) {
          const key = ticketKey(answer.ticket);
          const p = this.#pending.get(key);
          if (!p) continue; // the offer's deadline passed already
          this.#pending.delete(key);
          p.resolve(answer);
        }
        if (this.#pending.size === 0) this.#idleSince = Date.now();
      }
    } catch (err) {
      this.#end(lostError(err as Error, this.node));
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(key);
      const what = `node '${this.node}' to answer for endpoint '${endpointKey(p.to)}'`;
      p.reject(new DeadlineError(`Timed out waiting for ${what}`));
      if (this.#pending.size === 0) this.#idleSince = now;
    }
    if (this.#pending.size === 0 && this.#holds === 0 && now - this.#idleSince >= IDLE_CLOSE_MS) {
      this.close('idle');
    }
  }

  #end(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.ch.fail(err);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    close(this.ch.fd);
  }
}

/** What a session's end means for the offers waiting on it: the peer agent is gone. */
function lostError(err: Error, node: bigint): Error {
  if ((err as { code?: string }).code === 'EPEER_AGENT_LOST') return err;
  if (peerWentAway(err)) {
    return new ProtocolError(
      `Peer agent of node '${node}' closed the session: it stopped or was killed`,
      'EPEER_AGENT_LOST',
    );
  }
  return new ProtocolError(
    `Session with node '${node}' failed: ${err.message}`,
    'EPEER_AGENT_LOST',
  );
}

/** The acceptor's side of a session: answers go out batched. */
export class AcceptorSession {
  readonly #answers: Batch<Answer>;
  /** Offers received and not yet answered. */
  outstanding = 0;

  constructor(
    readonly ch: FrameChannel,
    readonly dialerNode: bigint,
  ) {
    this.#answers = new Batch((answers) => ch.write(encodePeerFrame({ kind: 'answers', answers })));
  }

  get open(): boolean {
    return this.ch.failure === undefined;
  }

  answer(answer: Answer): void {
    this.outstanding--;
    if (!this.open) return;
    this.#answers.add(answer, (answer.accepted?.drained.length ?? 0) + 96);
  }
}
