/**
 * What differs between the architectures rewire runs on (x86_64 and aarch64, glibc, LP64):
 * system call numbers and the few struct layouts that are not the same on both. Chosen once,
 * at load time, from `process.arch`.
 *
 * Both architectures share the asm-generic socket, errno and fcntl numbers, which live in
 * `constants.ts`; only what really differs is here.
 */

/** The layout facts that depend on the architecture. */
export interface ArchLayout {
  name: 'x64' | 'arm64';
  /** System call numbers for calls made through syscall(2). */
  sys: {
    pidfd_send_signal: number;
    pidfd_open: number;
    close_range: number;
    pidfd_getfd: number;
    gettid: number;
  };
  /**
   * struct epoll_event: x86_64 packs it (12 bytes, data at offset 4), aarch64 aligns the
   * 64-bit data member (16 bytes, data at offset 8).
   */
  epollEvent: { size: number; dataOffset: number };
}

const x64: ArchLayout = {
  name: 'x64',
  sys: { pidfd_send_signal: 424, pidfd_open: 434, close_range: 436, pidfd_getfd: 438, gettid: 186 },
  epollEvent: { size: 12, dataOffset: 4 },
};

const arm64: ArchLayout = {
  name: 'arm64',
  sys: { pidfd_send_signal: 424, pidfd_open: 434, close_range: 436, pidfd_getfd: 438, gettid: 178 },
  epollEvent: { size: 16, dataOffset: 8 },
};

/** Picks the layout of an architecture by its Node/Bun name; throws for any other. */
export function layoutFor(arch: string): ArchLayout {
  if (arch === 'x64') return x64;
  if (arch === 'arm64') return arm64;
  throw new Error(`Cannot run on this architecture: '${arch}' is not x64 or arm64`);
}

/** The layout of the architecture this process runs on. */
export const arch: ArchLayout = layoutFor(process.arch);

/** Sizes of the LP64 structs that are the same on both architectures. */
export const Sizes = {
  sockaddrIn: 16,
  sockaddrIn6: 28,
  sockaddrUn: 110,
  sockaddrStorage: 128,
  sunPath: 108,
  msghdr: 56,
  iovec: 16,
  cmsghdr: 16,
  ucred: 12,
  linger: 8,
  timeval: 16,
} as const;
