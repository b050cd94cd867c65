import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { notifyAddress, sdNotify } from '../../ffi/notify.ts';
import { NotifyListener } from './notify-listener.ts';

test('sdNotify does nothing without NOTIFY_SOCKET', () => {
  expect(sdNotify('READY=1', {})).toBe(false);
  expect(sdNotify('READY=1', { NOTIFY_SOCKET: '' })).toBe(false);
});

test('sdNotify sends one datagram to a path and to an abstract name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewire-notify-'));
  try {
    for (const name of [join(dir, 'n.sock'), `@rewire-notify-${process.pid}`]) {
      using listener = new NotifyListener(name);
      expect(sdNotify('READY=1\nSTATUS=ok', { NOTIFY_SOCKET: name })).toBe(true);
      expect(await listener.waitFor('READY=1', 1000)).toBe('READY=1\nSTATUS=ok');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sdNotify reports a socket nobody listens on with the call and errno', () => {
  expect(() => sdNotify('READY=1', { NOTIFY_SOCKET: '/nonexistent/notify.sock' })).toThrow(
    'sendto(fd ',
  );
  expect(() => sdNotify('READY=1', { NOTIFY_SOCKET: '/nonexistent/notify.sock' })).toThrow(
    /\/nonexistent\/notify\.sock\): ENOENT/,
  );
});

test('notifyAddress reads @ as the abstract namespace and refuses relative names', () => {
  expect(notifyAddress('@x')).toEqual({ family: 'unix', abstract: 'x' });
  expect(notifyAddress('/run/systemd/notify')).toEqual({
    family: 'unix',
    path: '/run/systemd/notify',
  });
  expect(() => notifyAddress('relative')).toThrow(
    "NOTIFY_SOCKET 'relative' is neither a path nor @name",
  );
});
