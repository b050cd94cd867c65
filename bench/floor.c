/*
 * The kernel floor of rewire's restore, for bench/restore.ts: the system calls the two agents
 * and the two restoring processes make per connection, made by C with nothing else, so that
 * the benchmark can tell how much of rewire's time is the work its protocol asks of the
 * kernel and how much is the agents' own.
 *
 * Four processes, as in the benchmark: a dialing agent and an accepting agent, each handing
 * every restored fd to its restoring process over an AF_UNIX socket with SCM_RIGHTS (253 fds
 * per message). Per connection:
 *   dialer:   socket, the options that precede connect (none here), connect, send the 20-byte
 *             ticket record, send 64 refill bytes, three setsockopt, F_GETFL/F_SETFL, pass
 *             the fd on, close
 *   acceptor: accept4, recv the 20-byte record, send 64 refill bytes, three setsockopt,
 *             F_GETFL/F_SETFL, pass the fd on, close
 *   each restoring process: receive the fds (held until the end)
 * What is left out is what the protocol amortises (one session per pair of agents: offers
 * and answers in batches of 256) and everything that is not a system call. Prints the
 * elapsed seconds.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel-work.h"

#define BATCH 253

/* Sends `n` fds in one message and closes this process's copies. */
static void pass_on(int sock, int *fds, int n) {
  char byte = 0;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  char control[CMSG_SPACE(BATCH * sizeof(int))];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control};
  msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  if (sendmsg(sock, &msg, 0) < 0) die("sendmsg");
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* A restoring process: receives `n` fds, holds them, closes them at the end. */
static void restoring_process(int sock, int n) {
  int *held = calloc((size_t)n, sizeof(int));
  int got = 0;
  while (got < n) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    char control[CMSG_SPACE(BATCH * sizeof(int))];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) die("recvmsg");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      memcpy(held + got, CMSG_DATA(c), k * sizeof(int));
      got += k;
    }
  }
  for (int i = 0; i < n; i++) close(held[i]);
  _exit(0);
}

static pid_t spawn_restoring(int *sock, int n) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) < 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(pair[0]);
    restoring_process(pair[1], n);
  }
  close(pair[1]);
  *sock = pair[0];
  return pid;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  struct sockaddr_in addr;
  int lfd = loopback_listener(&addr);

  char record[20], refill[64], got[20];
  memset(record, 'T', sizeof record);
  memset(refill, 'd', sizeof refill);
  int batch[BATCH];
  int k = 0;
  double start = now();
  pid_t dialer = fork();
  if (dialer < 0) die("fork");
  if (dialer == 0) {
    int to_process;
    pid_t restoring = spawn_restoring(&to_process, n);
    for (int i = 0; i < n; i++) {
      int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c < 0) die("socket");
      if (connect(c, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
      if (send(c, record, sizeof record, MSG_NOSIGNAL) != sizeof record) die("send record");
      if (send(c, refill, sizeof refill, MSG_NOSIGNAL) != sizeof refill) die("send refill");
      options(c);
      batch[k++] = c;
      if (k == BATCH || i == n - 1) {
        pass_on(to_process, batch, k);
        k = 0;
      }
    }
    int status;
    if (waitpid(restoring, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      die("dialer's restoring process");
    _exit(0);
  }
  int to_process;
  pid_t restoring = spawn_restoring(&to_process, n);
  for (int i = 0; i < n; i++) {
    int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0) die("accept4");
    size_t off = 0;
    while (off < sizeof got) {
      ssize_t r = recv(a, got + off, sizeof got - off, 0);
      if (r > 0) off += (size_t)r;
      else die("recv record");
    }
    if (send(a, refill, sizeof refill, MSG_NOSIGNAL) != sizeof refill) die("send refill");
    options(a);
    batch[k++] = a;
    if (k == BATCH || i == n - 1) {
      pass_on(to_process, batch, k);
      k = 0;
    }
  }
  int status;
  if (waitpid(restoring, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("acceptor's restoring process");
  if (waitpid(dialer, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("dialer");
  printf("%.6f\n", now() - start);
  return 0;
}
