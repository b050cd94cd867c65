/**
 * Numeric constants of the Linux socket, fcntl and epoll APIs. x86_64 and aarch64 share
 * all of these (asm-generic headers); what differs lives in `arch.ts`.
 */

export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16 } as const;

export const SOCK = {
  STREAM: 1,
  DGRAM: 2,
  SEQPACKET: 5,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
} as const;

export const SOL = { SOCKET: 1, IP: 0, TCP: 6, IPV6: 41 } as const;
export const IPPROTO = { IP: 0, TCP: 6, IPV6: 41 } as const;

export const SO = {
  REUSEADDR: 2,
  TYPE: 3,
  ERROR: 4,
  DONTROUTE: 5,
  BROADCAST: 6,
  SNDBUF: 7,
  RCVBUF: 8,
  KEEPALIVE: 9,
  OOBINLINE: 10,
  PRIORITY: 12,
  LINGER: 13,
  REUSEPORT: 15,
  PASSCRED: 16,
  PEERCRED: 17,
  RCVLOWAT: 18,
  SNDLOWAT: 19,
  RCVTIMEO: 20,
  SNDTIMEO: 21,
  BINDTODEVICE: 25,
  ACCEPTCONN: 30,
  SNDBUFFORCE: 32,
  RCVBUFFORCE: 33,
  MARK: 36,
  PROTOCOL: 38,
  DOMAIN: 39,
  PEEK_OFF: 42,
} as const;

export const TCP = {
  NODELAY: 1,
  MAXSEG: 2,
  CORK: 3,
  KEEPIDLE: 4,
  KEEPINTVL: 5,
  KEEPCNT: 6,
  SYNCNT: 7,
  LINGER2: 8,
  DEFER_ACCEPT: 9,
  WINDOW_CLAMP: 10,
  INFO: 11,
  QUICKACK: 12,
  CONGESTION: 13,
  USER_TIMEOUT: 18,
  REPAIR: 19,
  REPAIR_QUEUE: 20,
  QUEUE_SEQ: 21,
  NOTSENT_LOWAT: 25,
} as const;

/** TCP_REPAIR values: OFF_NO_WP leaves repair mode without sending a window probe. */
export const TCP_REPAIR_MODE = { OFF_NO_WP: -1, OFF: 0, ON: 1 } as const;

/** TCP_REPAIR_QUEUE values: which queue a repair-mode recv or TCP_QUEUE_SEQ works on. */
export const TCP_QUEUE = { NONE: 0, RECV: 1, SEND: 2 } as const;

export const IP = { TOS: 1, TTL: 2 } as const;
export const IPV6 = { V6ONLY: 26, TCLASS: 67 } as const;

export const F = {
  DUPFD: 0,
  GETFD: 1,
  SETFD: 2,
  GETFL: 3,
  SETFL: 4,
  SETOWN: 8,
  GETOWN: 9,
  SETSIG: 10,
  GETSIG: 11,
  GETOWN_EX: 16,
  DUPFD_CLOEXEC: 1030,
} as const;

/** struct f_owner_ex.type values (F_GETOWN_EX). */
export const F_OWNER = { TID: 0, PID: 1, PGRP: 2 } as const;

export const FD_CLOEXEC = 1;

export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  NONBLOCK: 0o4000,
  ASYNC: 0o20000,
  CLOEXEC: 0o2000000,
} as const;

export const MSG = {
  OOB: 0x1,
  PEEK: 0x2,
  CTRUNC: 0x8,
  TRUNC: 0x20,
  DONTWAIT: 0x40,
  WAITALL: 0x100,
  NOSIGNAL: 0x4000,
  CMSG_CLOEXEC: 0x40000000,
} as const;

export const SCM_RIGHTS = 1;

/** The most fds the kernel accepts in one SCM_RIGHTS message (SCM_MAX_FD). */
export const SCM_MAX_FD = 253;

export const SHUT = { RD: 0, WR: 1, RDWR: 2 } as const;

/** ioctl requests for socket queue lengths (FIONREAD and TIOCOUTQ on sockets). */
export const SIOC = { INQ: 0x541b, OUTQ: 0x5411, OUTQNSD: 0x894b } as const;

export const EPOLL = {
  CTL_ADD: 1,
  CTL_DEL: 2,
  CTL_MOD: 3,
  IN: 0x1,
  PRI: 0x2,
  OUT: 0x4,
  ERR: 0x8,
  HUP: 0x10,
  RDHUP: 0x2000,
  ONESHOT: 1 << 30,
  ET: 0x80000000,
  CLOEXEC: 0o2000000,
} as const;

export const SIG = { KILL: 9, CONT: 18, STOP: 19, IO: 29 } as const;

/** TCP states as tcp_info.tcpi_state reports them. */
export const TCP_STATES = [
  'UNKNOWN',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
] as const;
