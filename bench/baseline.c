/*
 * The kernel-work baseline for bench/restore.ts: for N connections, what restoring them costs
 * without rewire. Per connection: socket, connect to a loopback listener, accept, a 32-byte id
 * written and read, and the same setsockopt and fcntl calls the agent makes (three options,
 * F_GETFL/F_SETFL). Like the two agents, a connecting process and an accepting process each
 * hold their N fds. Prints the elapsed seconds.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel-work.h"

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  int *fds = calloc((size_t)n, sizeof(int));
  struct sockaddr_in addr;
  int lfd = loopback_listener(&addr);

  double start = now();
  pid_t child = fork();
  if (child < 0) die("fork");
  char id[32], got[32];
  if (child == 0) {
    for (int i = 0; i < n; i++) {
      int c = socket(AF_INET, SOCK_STREAM, 0);
      if (c < 0) die("socket");
      if (connect(c, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
      memset(id, 0, sizeof id);
      snprintf(id, sizeof id, "endpoint-%d", i);
      if (write(c, id, sizeof id) != sizeof id) die("write");
      options(c);
      fds[i] = c;
    }
    _exit(0);
  }
  for (int i = 0; i < n; i++) {
    int a = accept(lfd, NULL, NULL);
    if (a < 0) die("accept");
    if (read(a, got, sizeof got) != sizeof got) die("read");
    options(a);
    fds[i] = a;
  }
  int status;
  if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "connecting process failed\n");
    return 1;
  }
  double elapsed = now() - start;
  for (int i = 0; i < n; i++) close(fds[i]);
  printf("%.6f\n", elapsed);
  return 0;
}
