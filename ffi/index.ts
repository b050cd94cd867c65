/**
 * rewire's libc layer: every libc call the product makes, behind typed functions. Nothing
 * outside `ffi/` handles pointers, struct offsets or errno.
 */
export * from './arch.ts';
export * from './constants.ts';
export * from './epoll.ts';
export * from './errno.ts';
export * from './errors.ts';
export * from './fcntl.ts';
export * from './fdpass.ts';
export * from './process.ts';
export * from './sockaddr.ts';
export * from './socket.ts';
export * from './sockopt.ts';
export * from './sockdiag.ts';
export * from './tcpinfo.ts';
