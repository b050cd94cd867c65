/** Captures that cannot be made: each reason has its own error code and a message with the fix. */
import { afterEach, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';

import { getuid } from '../../ffi/index.ts';
import { captureProcess, captureTarget } from '../../src/capture/capture.ts';
import { CaptureError } from '../../src/capture/errors.ts';
import { CaptureTarget } from '../../src/capture/target.ts';
import { mainPath } from '../cli/run-cli.ts';
import { runState, startOwner, stopOwners } from './helpers.ts';

afterEach(stopOwners);

async function captureError(run: () => Promise<unknown>): Promise<CaptureError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(CaptureError);
    return err as CaptureError;
  }
  throw new Error('expected a CaptureError');
}

test('an unknown pid is refused with ENOPROC', async () => {
  const pid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
  const err = await captureError(() => captureProcess(pid, { nodeId: 1n }));
  expect(err.code).toBe('ENOPROC');
  expect(err.message).toBe(`Cannot capture pid '${pid}': no such process`);
});

test("a thread's id is refused with ENOPROC, naming the process to capture instead", async () => {
  const tid = readdirSync('/proc/self/task')
    .map(Number)
    .find((t) => t !== process.pid)!;
  const err = await captureError(() => captureProcess(tid, { nodeId: 1n }));
  expect(err.code).toBe('ENOPROC');
  expect(err.message).toBe(
    `Cannot capture pid '${tid}': it is a thread of process '${process.pid}', not a process: capture '${process.pid}'`,
  );
});

test('a zombie is refused with EZOMBIE', async () => {
  const parent = await startOwner(['zoo']);
  const { pid } = await parent.command('zombie');
  while (runState(pid) !== 'Z') await Bun.sleep(1);

  const err = await captureError(() => captureProcess(pid, { nodeId: 1n, drain: true }));
  expect(err.code).toBe('EZOMBIE');
  expect(err.message).toContain('has exited and is a zombie');
});

test('a process that exits once the capture has begun is reported as EVANISHED', async () => {
  const owner = await startOwner(['server']);
  using target = CaptureTarget.open(owner.pid);
  await owner.stop();

  const err = await captureError(() => captureTarget(target, { nodeId: 1n }));
  expect(err.code).toBe('EVANISHED');
  expect(err.message).toBe(
    `Cannot capture pid '${owner.pid}': the process exited while the capture began`,
  );
});

test('a process the caller may not trace is refused with ECAPTURE_DENIED and the fix', async () => {
  const target = await startOwner(['server']);
  // As root, drop to nobody to capture a root process; otherwise capture init.
  const asNobody = getuid() === 0;
  const pid = asNobody ? target.pid : 1;
  const argv = [process.execPath, mainPath, 'capture', '--pid', String(pid), '--node-id', '1'];
  const drop =
    'import os,sys; os.setgid(65534); os.setuid(65534); os.execv(sys.argv[1], sys.argv[1:])';
  const child = Bun.spawn(asNobody ? ['python3', '-c', drop, ...argv] : argv, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);

  expect([code, stdout]).toEqual([1, '']);
  expect(stderr).toContain(
    `rewire: Cannot capture pid '${pid}': not permitted to copy its fds (pidfd_getfd): run as root or with CAP_SYS_PTRACE`,
  );
});

test('a drain of the capturing process itself is refused with EFREEZE, not a self-stop', async () => {
  const err = await captureError(() => captureProcess(process.pid, { nodeId: 1n, drain: true }));
  expect(err.code).toBe('EFREEZE');
  expect(err.message).toBe(`Cannot freeze pid '${process.pid}': it is the capturing process`);
});
