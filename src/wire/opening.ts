/**
 * The opening record of every TCP connection to an agent's rewire port: 20 bytes, read
 * exactly, that say what the connection is for.
 *
 *   "RWS2" + 16 zero bytes   a session: length-delimited frames follow (peer-handshake.ts)
 *   "RWT2" + 16-byte ticket  a data connection: the connection being restored. The dialing
 *                            agent sends nothing after the record; the ticket names the Offer
 *                            it made on an authenticated session.
 *
 * A fixed-size record lets the acceptor read a data connection's opening with one recv and
 * never a byte more, so everything after it belongs to the process the connection goes to.
 */
import { ProtocolError } from '../errors.ts';

export const OPENING_BYTES = 20;
export const TICKET_BYTES = 16;

const MAGIC_BYTES = 4;
const SESSION_MAGIC = [0x52, 0x57, 0x53, 0x32]; // "RWS2"
const TICKET_MAGIC = [0x52, 0x57, 0x54, 0x32]; // "RWT2"

export type Opening = { kind: 'session' } | { kind: 'ticket'; ticket: Uint8Array };

/** The opening record of a session. */
export function sessionOpening(): Uint8Array {
  const out = new Uint8Array(OPENING_BYTES);
  out.set(SESSION_MAGIC);
  return out;
}

/** The opening record of the data connection for the offer with `ticket`. */
export function ticketOpening(ticket: Uint8Array): Uint8Array {
  if (ticket.length !== TICKET_BYTES) {
    throw new RangeError(`A ticket is ${TICKET_BYTES} bytes, not ${ticket.length}`);
  }
  const out = new Uint8Array(OPENING_BYTES);
  out.set(TICKET_MAGIC);
  out.set(ticket, MAGIC_BYTES);
  return out;
}

/**
 * Whether the first `n` bytes of `buf` can start an opening record: lets a reader drop a
 * stranger (an HTTP request, a port scan) as soon as its first bytes are in.
 */
export function openingStartsWell(buf: Uint8Array, n: number): boolean {
  const m = Math.min(n, MAGIC_BYTES);
  let session = true;
  let ticket = true;
  for (let i = 0; i < m; i++) {
    if (buf[i] !== SESSION_MAGIC[i]) session = false;
    if (buf[i] !== TICKET_MAGIC[i]) ticket = false;
  }
  return session || ticket;
}

/**
 * The opening record in the first 20 bytes of `buf`.
 * @throws {ProtocolError} EPROTOCOL when it is neither a session nor a ticket record
 */
export function parseOpening(buf: Uint8Array): Opening {
  if (buf.length < OPENING_BYTES || !openingStartsWell(buf, MAGIC_BYTES)) {
    throw new ProtocolError(
      'Connection to the rewire port did not open with a rewire record (RWS2 or RWT2): not a rewire agent of this protocol version',
    );
  }
  if (buf[2] === SESSION_MAGIC[2]) {
    for (let i = MAGIC_BYTES; i < OPENING_BYTES; i++) {
      if (buf[i] !== 0) {
        throw new ProtocolError('Session opening record has non-zero bytes after RWS2');
      }
    }
    return { kind: 'session' };
  }
  return { kind: 'ticket', ticket: buf.slice(MAGIC_BYTES, MAGIC_BYTES + TICKET_BYTES) };
}

/** A ticket as a map key. */
export function ticketKey(ticket: Uint8Array): string {
  return Buffer.from(ticket.buffer, ticket.byteOffset, ticket.byteLength).toString('hex');
}
