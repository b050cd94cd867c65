/** Which side of its connection a captured socket was, from what the socket shows. */
import { expect, test } from 'bun:test';

import { decideRole, type RoleInput } from '../../src/capture/role.ts';
import type { Address } from '../../src/model/types.ts';

const ephemeral = { low: 32768, high: 60999 };
const inet = (address: string, port: number): Address => ({ family: 'inet', address, port });
const unix = (path?: string): Address => (path ? { family: 'unix', path } : { family: 'unix' });
const socket = (local: Address, remote: Address, extra: Partial<RoleInput> = {}): RoleInput => ({
  listening: false,
  local,
  remote,
  inode: 100,
  ...extra,
});

test('a socket on the port of a listener of the process, on its wildcard address, was accepted', () => {
  const s = socket(inet('10.0.0.1', 5000), inet('10.0.0.2', 5001));
  const listeners = [inet('0.0.0.0', 5000)];
  expect(decideRole(s, { listeners, ephemeral })).toEqual({
    role: 'accept',
    reason: 'listener-port',
  });
  const elsewhere = [inet('127.0.0.1', 5000)];
  expect(decideRole(s, { listeners: elsewhere, ephemeral }).role).toBe('connect');
});

test('a fixed local port talking to an ephemeral peer port was accepted; the reverse connected', () => {
  const ctx = { listeners: [], ephemeral };
  expect(decideRole(socket(inet('10.0.0.1', 80), inet('10.0.0.2', 40000)), ctx)).toEqual({
    role: 'accept',
    reason: 'ephemeral-peer',
  });
  expect(decideRole(socket(inet('10.0.0.2', 40000), inet('10.0.0.1', 80)), ctx)).toEqual({
    role: 'connect',
    reason: 'default-connect',
  });
});

test('a named unix socket with an unnamed peer was accepted; its peer connected', () => {
  const ctx = { listeners: [], ephemeral };
  expect(decideRole(socket(unix('/run/x.sock'), unix()), ctx)).toEqual({
    role: 'accept',
    reason: 'unix-name',
  });
  expect(decideRole(socket(unix(), unix('/run/x.sock')), ctx).role).toBe('connect');
});

test('the two ends of a socketpair are told apart by inode, so both captures agree', () => {
  const ctx = { listeners: [], ephemeral };
  const a = socket(unix(), unix(), { inode: 7, peerInode: 8 });
  const b = socket(unix(), unix(), { inode: 8, peerInode: 7 });
  expect([decideRole(a, ctx).role, decideRole(b, ctx).role]).toEqual(['connect', 'accept']);
});
