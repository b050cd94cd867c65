import { describe, expect, test } from 'bun:test';

import { notifyAddress, sdNotify, sendTo } from '../../ffi/notify.ts';
import { bind, close, EPOLL, FfiArgumentError, getSockName, socket } from '../../ffi/index.ts';
import { checkNoFdLeaks, recvNow, text, waitFor } from './helpers.ts';

checkNoFdLeaks();

/** A datagram socket bound to a fresh abstract name, standing in for systemd. */
function manager(): { fd: number; name: string } {
  const name = `rewire-notify-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = socket('unix', 'dgram');
  bind(fd, { family: 'unix', abstract: name });
  return { fd, name };
}

describe('notifyAddress', () => {
  test('reads @name as abstract and /path as a path', () => {
    expect(notifyAddress('@sd-notify')).toEqual({ family: 'unix', abstract: 'sd-notify' });
    expect(notifyAddress('/run/systemd/notify')).toEqual({
      family: 'unix',
      path: '/run/systemd/notify',
    });
  });

  test('refuses anything else', () => {
    expect(() => notifyAddress('relative')).toThrow(
      "Cannot notify: NOTIFY_SOCKET 'relative' is neither a path nor @name",
    );
  });
});

describe('sendTo', () => {
  test('delivers one datagram to a bound unix address', () => {
    const target = manager();
    const fd = socket('unix', 'dgram');

    expect(
      sendTo(fd, new TextEncoder().encode('hello'), { family: 'unix', abstract: target.name }),
    ).toBe(5);
    waitFor(target.fd, EPOLL.IN);
    expect(text(recvNow(target.fd)!)).toBe('hello');
    expect(getSockName(target.fd)).toEqual({ family: 'unix', abstract: target.name });
    [fd, target.fd].forEach(close);
  });

  test('a name nobody bound throws ECONNREFUSED naming it', () => {
    const fd = socket('unix', 'dgram');
    const name = `rewire-nobody-${process.pid}`;
    expect(() => sendTo(fd, new Uint8Array([1]), { family: 'unix', abstract: name })).toThrow(
      `sendto(fd ${fd}, @${name}): ECONNREFUSED (connection refused)`,
    );
    close(fd);
  });
});

describe('sdNotify', () => {
  test('sends the state to the socket NOTIFY_SOCKET names', () => {
    const target = manager();
    expect(sdNotify('READY=1\nSTATUS=serving', { NOTIFY_SOCKET: `@${target.name}` })).toBe(true);
    waitFor(target.fd, EPOLL.IN);
    expect(text(recvNow(target.fd)!)).toBe('READY=1\nSTATUS=serving');
    close(target.fd);
  });

  test('does nothing without NOTIFY_SOCKET', () => {
    expect(sdNotify('READY=1', {})).toBe(false);
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: '' })).toBe(false);
  });

  test('a malformed NOTIFY_SOCKET throws FfiArgumentError', () => {
    expect(() => sdNotify('READY=1', { NOTIFY_SOCKET: 'x' })).toThrow(FfiArgumentError);
  });
});
