/**
 * Mutual authentication between agents with the cluster key: each side sends a fresh 32-byte
 * nonce and proves it holds the key with HMAC-SHA256 over both nonces and both node ids, under
 * a label that differs by role, so that a proof can be neither replayed nor reflected.
 *
 *   dialer   -> acceptor  Hello     { nonce_d, node_d }
 *   acceptor -> dialer    Challenge { nonce_a, node_a, proof_a = H(key, "acceptor", nonce_d, nonce_a, node_d, node_a) }
 *   dialer   -> acceptor  Join      { proof_d = H(key, "dialer", nonce_a, nonce_d, node_d, node_a) }
 *
 * This opens a session between the two agents (src/rewire/peer-handshake.ts). The acceptor
 * names nothing before it has verified proof_d; the dialer offers no endpoint before it has
 * verified proof_a and been told its own proof holds.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;
export const PROTOCOL_VERSION = 2;

export function freshNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

function u64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), false);
  return out;
}

/** The proof a side sends; `role` is the sender's role. */
export function proof(
  key: Uint8Array,
  role: 'dialer' | 'acceptor',
  nonces: { dialer: Uint8Array; acceptor: Uint8Array },
  nodes: { dialer: bigint; acceptor: bigint },
): Uint8Array {
  const mac = createHmac('sha256', key);
  mac.update(`rewire/${PROTOCOL_VERSION} ${role}`);
  if (role === 'acceptor') mac.update(nonces.dialer).update(nonces.acceptor);
  else mac.update(nonces.acceptor).update(nonces.dialer);
  mac.update(u64(nodes.dialer)).update(u64(nodes.acceptor));
  return new Uint8Array(mac.digest());
}

/** Compares a received proof with the expected one in constant time. */
export function proofMatches(received: Uint8Array, expected: Uint8Array): boolean {
  return received.length === expected.length && timingSafeEqual(received, expected);
}
