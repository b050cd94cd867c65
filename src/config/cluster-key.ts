/**
 * The cluster key that all agents share (HMAC-SHA256 over handshake challenges): read from a
 * file of hex or raw bytes, or made on first start as 32 random bytes in hex, mode 0600.
 */
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';

import { ConfigError } from './errors.ts';

/** The fewest key bytes accepted. */
export const minKeyBytes = 32;

const fieldName = 'clusterKeyFile';

/**
 * The key in `path`; when the file does not exist, a new key is written there first.
 * @throws {ConfigError} when the file cannot be read or made, is readable by group or others,
 * or holds fewer than 32 bytes (64 hex digits)
 */
export function loadClusterKey(path: string, source: string): Uint8Array {
  const bytes = readKeyFile(path, source) ?? createKeyFile(path, source);
  return decodeKey(bytes, path, source);
}

function readKeyFile(path: string, source: string): Buffer | undefined {
  try {
    const stat = statSync(path);
    if (!stat.isFile())
      throw ConfigError.single(fieldName, `'${path}' is not a regular file`, source);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      const message = `'${path}' is readable by group or others (mode ${mode}): run chmod 600 '${path}'`;
      throw ConfigError.single(fieldName, message, source);
    }
    return readFileSync(path);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw ConfigError.single(fieldName, `cannot read '${path}': ${code}`, source, err);
  }
}

/** Writes a fresh key with O_EXCL, so two agents starting at once agree on one key. */
function createKeyFile(path: string, source: string): Buffer {
  const hex = Buffer.from(crypto.getRandomValues(new Uint8Array(minKeyBytes))).toString('hex');
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return readKeyFile(path, source) ?? Buffer.alloc(0);
    throw ConfigError.single(fieldName, `cannot create '${path}': ${code}`, source, err);
  }
  try {
    writeSync(fd, `${hex}\n`);
  } finally {
    closeSync(fd);
  }
  return Buffer.from(`${hex}\n`);
}

function decodeKey(bytes: Buffer, path: string, source: string): Uint8Array {
  const text = bytes.toString('latin1').trim();
  if (/^[0-9a-fA-F]+$/.test(text)) {
    if (text.length % 2 === 0 && text.length >= minKeyBytes * 2) {
      return new Uint8Array(Buffer.from(text, 'hex'));
    }
    const message = `'${path}' holds ${text.length} hex digits; a key needs an even number, at least ${minKeyBytes * 2}`;
    throw ConfigError.single(fieldName, message, source);
  }
  if (bytes.length < minKeyBytes) {
    const message = `'${path}' holds ${bytes.length} bytes; a key needs at least ${minKeyBytes}`;
    throw ConfigError.single(fieldName, message, source);
  }
  return new Uint8Array(bytes);
}
