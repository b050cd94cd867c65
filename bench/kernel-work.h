/*
 * What bench/baseline.c and bench/floor.c share: failing loudly, the clock, the loopback
 * listener, and the socket options and fcntl calls made on every restored socket (the same
 * three options the benchmark's endpoints record, and F_GETFL/F_SETFL).
 */
#ifndef REWIRE_BENCH_KERNEL_WORK_H
#define REWIRE_BENCH_KERNEL_WORK_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void options(int fd) {
  int one = 1, size = 65536;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("TCP_NODELAY");
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0) die("SO_KEEPALIVE");
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0) die("SO_SNDBUF");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

/* A listening TCP socket on 127.0.0.1 and a kernel-chosen port, written to `addr`. */
static int loopback_listener(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof *addr;
  if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0) die("bind");
  if (listen(fd, 4096) < 0) die("listen");
  if (getsockname(fd, (struct sockaddr *)addr, &len) < 0) die("getsockname");
  return fd;
}

#endif
