import { describe, expect, test } from 'bun:test';

import { check, checkTolerating } from '../../ffi/call.ts';
import {
  close,
  Errno,
  errnoName,
  errnoText,
  errnoValue,
  FfiArgumentError,
  getIntOption,
  isOpen,
  RewireError,
  socketpair,
  SyscallError,
  TruncatedControlError,
} from '../../ffi/index.ts';
import { errno } from '../../ffi/libc.ts';
import { finished } from './helpers.ts';

/** A SyscallError from a real call: getsockopt on an fd that was just closed. */
function realFailure(): { err: SyscallError; fd: number } {
  const [a, b] = socketpair('stream');
  close(a);
  close(b);
  try {
    getIntOption(b, 'SO_SNDBUF');
  } catch (err) {
    return { err: err as SyscallError, fd: b };
  }
  throw new Error('getsockopt on a closed fd succeeded');
}

/** Python's view of errno: number to [names, strerror], for an independent check. */
async function pythonErrnoTable(): Promise<Record<string, [string[], string]>> {
  const script = [
    'import errno, json, os',
    'names = {}',
    'for k in dir(errno):',
    "    if k.startswith('E'): names.setdefault(getattr(errno, k), []).append(k)",
    'print(json.dumps({n: [v, os.strerror(n)] for n, v in names.items()}))',
  ].join('\n');
  const child = Bun.spawn(['python3', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const result = await finished(child);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

describe('SyscallError', () => {
  test('a failed call names the call, fd, option and errno, with a stable code', () => {
    const { err, fd } = realFailure();
    expect(err).toBeInstanceOf(SyscallError);
    expect(err).toBeInstanceOf(RewireError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('SyscallError');
    expect(err.code).toBe('ESYSCALL');
    expect(err.message).toBe(
      `getsockopt(fd ${fd}, SOL_SOCKET, SO_SNDBUF): EBADF (bad file descriptor)`,
    );
    expect({ syscall: err.syscall, errno: err.errno, errnoName: err.errnoName }).toEqual({
      syscall: 'getsockopt',
      errno: Errno.EBADF,
      errnoName: 'EBADF',
    });
  });

  test('serialises to JSON with its code, call, errno name and fd', () => {
    const { err, fd } = realFailure();
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      code: 'ESYSCALL',
      message: err.message,
      syscall: 'getsockopt',
      errno: 'EBADF',
      fd,
    });
  });

  test('a call without an fd or detail has empty parentheses', () => {
    const err = new SyscallError({ syscall: 'pipe2' }, Errno.EMFILE);
    expect(err.message).toBe('pipe2(): EMFILE (too many open files)');
    expect(err.fd).toBeUndefined();
    expect(err.detail).toBeUndefined();
  });

  test('an errno with no name still makes a readable message', () => {
    expect(new SyscallError({ syscall: 'x', fd: 3 }, 4095).message).toBe(
      'x(fd 3): E4095 (unknown error)',
    );
  });
});

describe('the other error classes', () => {
  test('RewireError carries its code and serialises to code and message', () => {
    const err = new RewireError('ESOMETHING', 'Cannot do it: reason', { cause: 'why' });
    expect(err.code).toBe('ESOMETHING');
    expect(err.cause).toBe('why');
    expect(err.toJSON()).toEqual({ code: 'ESOMETHING', message: 'Cannot do it: reason' });
  });

  test('TruncatedControlError and FfiArgumentError have their own codes', () => {
    const truncated = new TruncatedControlError(7, 4);
    expect(truncated).toBeInstanceOf(RewireError);
    expect(truncated.code).toBe('ECTRUNC');
    expect(truncated.name).toBe('TruncatedControlError');
    const argument = new FfiArgumentError('Cannot use it: bad');
    expect(argument.code).toBe('EARGUMENT');
    expect(argument.name).toBe('FfiArgumentError');
  });
});

describe('errno', () => {
  // Each errno read below follows the failing call directly, as the wrappers do.
  test('errno reads the value the last failed call left', () => {
    const open = isOpen(-1);
    const value = errno();
    expect(open).toBe(false);
    expect(value).toBe(Errno.EBADF);
  });

  test('check passes non-negative results through and throws for negative ones', () => {
    expect(check(5, { syscall: 'x' })).toBe(5);
    expect(check(5n, { syscall: 'x' })).toBe(5);
    let caught: unknown;
    try {
      isOpen(-1);
      check(-1, { syscall: 'fcntl', fd: -1, detail: 'F_GETFD' });
    } catch (err) {
      caught = err;
    }
    expect((caught as SyscallError).message).toBe(
      'fcntl(fd -1, F_GETFD): EBADF (bad file descriptor)',
    );
  });

  test('checkTolerating returns minus the errno it tolerates and throws the others', () => {
    expect(checkTolerating(3, { syscall: 'x' }, [Errno.EAGAIN])).toBe(3);
    isOpen(-1);
    const tolerated = checkTolerating(-1, { syscall: 'x' }, [Errno.EBADF]);
    expect(tolerated).toBe(-Errno.EBADF);
    let caught: unknown;
    try {
      isOpen(-1);
      checkTolerating(-1n, { syscall: 'x' }, [Errno.EAGAIN]);
    } catch (err) {
      caught = err;
    }
    expect((caught as SyscallError).errnoName).toBe('EBADF');
  });

  test('names, descriptions and values of the common errnos', () => {
    expect(errnoName(Errno.EBADF)).toBe('EBADF');
    expect(errnoText(Errno.EBADF)).toBe('bad file descriptor');
    expect(errnoValue('ECONNREFUSED')).toBe(111);
    expect(errnoName(4095)).toBe('E4095');
    expect(errnoText(4095)).toBe('unknown error');
    expect(() => errnoValue('EBOGUS')).toThrow("Unknown errno name: 'EBOGUS'");
  });

  test('shared numbers show the name glibc gives and accept every alias', () => {
    expect([11, 35, 95].map(errnoName)).toEqual(['EAGAIN', 'EDEADLK', 'EOPNOTSUPP']);
    expect(['EWOULDBLOCK', 'EDEADLOCK', 'ENOTSUP'].map(errnoValue)).toEqual([11, 35, 95]);
  });

  test('every Errno constant has the value its name has in the table', () => {
    for (const [name, value] of Object.entries(Errno)) {
      expect([name, errnoValue(name)]).toEqual([name, value]);
      expect(errnoName(value)).toBe(name);
    }
  });

  test('names, numbers and descriptions agree with Python and the C library', async () => {
    const python = await pythonErrnoTable();
    const disagreements: string[] = [];
    for (const [number, [names, description]] of Object.entries(python)) {
      const n = Number(number);
      if (!names.includes(errnoName(n))) disagreements.push(`${n}: name ${errnoName(n)}`);
      if (errnoText(n) !== description.toLowerCase()) disagreements.push(`${n}: ${errnoText(n)}`);
      for (const name of names) {
        if (errnoValue(name) !== n) disagreements.push(`${name}: value`);
      }
    }
    expect(disagreements).toEqual([]);
  });
});
