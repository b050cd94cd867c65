/**
 * fcntl(2): file status flags, descriptor flags, the owner that receives SIGIO/SIGURG and the
 * signal sent instead of SIGIO.
 */
import { ptr } from 'bun:ffi';

import { check } from './call.ts';
import { F, F_OWNER, FD_CLOEXEC, O } from './constants.ts';
import { sym } from './libc.ts';

function fcntl(fd: number, cmd: number, name: string, arg = 0): number {
  return check(sym.fcntl(fd, cmd, arg), {
    syscall: 'fcntl',
    fd,
    detail: arg ? `${name}, ${arg}` : name,
  });
}

/** F_GETFL: the file status flags (O_NONBLOCK, O_ASYNC, access mode, ...). */
export function getStatusFlags(fd: number): number {
  return fcntl(fd, F.GETFL, 'F_GETFL');
}

/** F_SETFL: sets the file status flags that Linux lets change (O_NONBLOCK, O_ASYNC, O_APPEND, ...). */
export function setStatusFlags(fd: number, flags: number): void {
  fcntl(fd, F.SETFL, 'F_SETFL', flags);
}

/** F_GETFD: the descriptor flags (FD_CLOEXEC). */
export function getDescriptorFlags(fd: number): number {
  return fcntl(fd, F.GETFD, 'F_GETFD');
}

/** F_SETFD: sets the descriptor flags. */
export function setDescriptorFlags(fd: number, flags: number): void {
  fcntl(fd, F.SETFD, 'F_SETFD', flags);
}

/**
 * The pid (positive) or process group (negative) that receives SIGIO; 0 if none. Read with
 * F_GETOWN_EX: glibc's F_GETOWN returns a process group negated, which reads as a failure.
 */
export function getOwner(fd: number): number {
  const owner = new Int32Array(2); // struct f_owner_ex { int type; pid_t pid; }
  check(sym.fcntl(fd, F.GETOWN_EX, ptr(owner)), { syscall: 'fcntl', fd, detail: 'F_GETOWN_EX' });
  return owner[0] === F_OWNER.PGRP ? -owner[1]! : owner[1]!;
}

/** F_SETOWN: makes `owner` (pid, or -pgid) receive the fd's I/O signals. */
export function setOwner(fd: number, owner: number): void {
  check(sym.fcntl(fd, F.SETOWN, owner), { syscall: 'fcntl', fd, detail: `F_SETOWN, ${owner}` });
}

/** F_GETSIG: the signal sent when I/O is possible; 0 means SIGIO. */
export function getSignal(fd: number): number {
  return fcntl(fd, F.GETSIG, 'F_GETSIG');
}

/** F_SETSIG: the signal sent when I/O is possible; 0 restores SIGIO. */
export function setSignal(fd: number, signal: number): void {
  check(sym.fcntl(fd, F.SETSIG, signal), { syscall: 'fcntl', fd, detail: `F_SETSIG, ${signal}` });
}

/** Turns O_NONBLOCK on or off, keeping the other status flags. */
export function setNonBlocking(fd: number, on: boolean): void {
  const flags = getStatusFlags(fd);
  setStatusFlags(fd, on ? flags | O.NONBLOCK : flags & ~O.NONBLOCK);
}

/** Turns FD_CLOEXEC on or off. */
export function setCloseOnExec(fd: number, on: boolean): void {
  setDescriptorFlags(fd, on ? FD_CLOEXEC : 0);
}

/** F_DUPFD_CLOEXEC: a copy of `fd` at the lowest number ≥ `min`, close-on-exec, owned by the caller. */
export function dupAtLeast(fd: number, min: number): number {
  return check(sym.fcntl(fd, F.DUPFD_CLOEXEC, min), {
    syscall: 'fcntl',
    fd,
    detail: `F_DUPFD_CLOEXEC, ${min}`,
  });
}

/** Whether `fd` is an open descriptor of this process. */
export function isOpen(fd: number): boolean {
  return sym.fcntl(fd, F.GETFD, 0) >= 0;
}

/** The status flags rewire records and replays. */
export const RecordedStatusFlags = O.NONBLOCK | O.ASYNC;
