import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';

import {
  accept,
  close,
  connect,
  EPOLL,
  execve,
  FD_CLOEXEC,
  getDescriptorFlags,
  getgid,
  getpid,
  getPeerName,
  getSockName,
  getuid,
  pidfdGetfd,
  pidfdOpen,
  pidfdSendSignal,
  SIG,
  socket,
  socketKind,
  socketpair,
  SyscallError,
  type SockAddr,
} from '../../ffi/index.ts';
import { finished, LineReader, recvNow, spawnBun, text, until, waitFor } from './helpers.ts';

/** The run state letter of a process (R, S, T, Z, ...) from /proc/PID/stat. */
function runState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** Starts holder.ts and reads the listener it reports. */
async function startHolder() {
  const child = spawnBun('holder.ts', [], [], 'pipe');
  const lines = new LineReader(child.stdout);
  const info = JSON.parse(await lines.next()) as { pid: number; fd: number; address: SockAddr };
  return { child, lines, ...info };
}

describe('pidfds', () => {
  test("pidfd_getfd copies a child's listening socket, which then accepts its connections", async () => {
    const holder = await startHolder();
    const pidfd = pidfdOpen(holder.pid);

    const copy = pidfdGetfd(pidfd, holder.fd);
    expect(getSockName(copy)).toEqual(holder.address);
    expect(socketKind(copy).listening).toBe(true);
    expect(getDescriptorFlags(copy)).toBe(FD_CLOEXEC);
    const client = socket('inet', 'stream');
    connect(client, holder.address);
    const server = accept(copy)!;
    expect(getPeerName(client)).toEqual(holder.address);
    expect(server.peer).toEqual(getSockName(client));

    [server.fd, client, copy, pidfd].forEach(close);
    void holder.child.stdin?.end();
    expect(await holder.child.exited).toBe(0);
  });

  test('pidfd_getfd of an fd the process does not have throws EBADF', async () => {
    const holder = await startHolder();
    const pidfd = pidfdOpen(holder.pid);

    expect(() => pidfdGetfd(pidfd, 4000)).toThrow(
      `pidfd_getfd(fd ${pidfd}, target fd 4000): EBADF (bad file descriptor)`,
    );
    close(pidfd);
    void holder.child.stdin?.end();
    await holder.child.exited;
  });

  test('pidfd_send_signal stops, continues and kills a child', async () => {
    const holder = await startHolder();
    const pidfd = pidfdOpen(holder.pid);

    pidfdSendSignal(pidfd, SIG.STOP);
    await until('the child stopped', () => runState(holder.pid) === 'T');
    pidfdSendSignal(pidfd, SIG.CONT);
    await until('the child running again', () => runState(holder.pid) !== 'T');
    process.kill(holder.pid, 'SIGUSR2');
    expect(await holder.lines.next()).toBe('signal SIGUSR2');

    pidfdSendSignal(pidfd, SIG.KILL);
    expect(waitFor(pidfd, EPOLL.IN) & EPOLL.IN).toBe(EPOLL.IN);
    await holder.child.exited;
    expect(holder.child.signalCode).toBe('SIGKILL');
    close(pidfd);
  });

  test('pidfd_send_signal to a process that is gone throws ESRCH', async () => {
    const holder = await startHolder();
    const pidfd = pidfdOpen(holder.pid);
    void holder.child.stdin?.end();
    await holder.child.exited;

    let caught: unknown;
    try {
      pidfdSendSignal(pidfd, SIG.CONT);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).message).toBe(
      `pidfd_send_signal(fd ${pidfd}, signal ${SIG.CONT}): ESRCH (no such process)`,
    );
    close(pidfd);
  });

  test('pidfd_open of an invalid pid throws EINVAL', () => {
    expect(() => pidfdOpen(-1)).toThrow('pidfd_open(pid -1): EINVAL (invalid argument)');
  });
});

describe('execve', () => {
  test('replaces a child process, keeping fds without close-on-exec and closing the rest', async () => {
    const [mine, theirs] = socketpair('stream');
    const child = spawnBun('exec.ts', ['marker-7f3a'], [theirs]);
    close(theirs);

    const result = await finished(child);
    const reported: string[] = [];
    for (let got = recvNow(mine, 4096); got !== null && got.length > 0; got = recvNow(mine, 4096)) {
      reported.push(text(got));
    }

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(reported.join('').trim().split('\n')).toEqual([
      `pid:${child.pid}`,
      'mark:marker-7f3a',
      'kept:same',
      'dropped:closed',
    ]);
    close(mine);
  });

  test('execve of a missing path throws ENOENT and returns to the caller', () => {
    let caught: unknown;
    try {
      execve('/nonexistent/rewire-exec-test', ['missing'], { A: 'b' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).errnoName).toBe('ENOENT');
    expect((caught as SyscallError).message).toBe(
      'execve(/nonexistent/rewire-exec-test): ENOENT (no such file or directory)',
    );
  });

  test('execve of a directory throws EACCES', () => {
    expect(() => execve('/tmp', ['tmp'], {})).toThrow('execve(/tmp): EACCES (permission denied)');
  });
});

describe('identity', () => {
  test('getpid, getuid and getgid agree with the runtime', () => {
    expect(getpid()).toBe(process.pid);
    expect(getuid()).toBe(process.getuid!());
    expect(getgid()).toBe(process.getgid!());
  });
});
