/*
 * A vsock client and server for the guest side of the vsock tests, built
 * static so it runs in the default guest's busybox initramfs.
 *
 *   vsock-tool send CID PORT MESSAGE   connect, send MESSAGE, half-close,
 *                                      print what comes back until EOF
 *   vsock-tool serve PORT REPLY        accept one connection, print what
 *                                      arrives until EOF, send REPLY, close
 *
 * Exit status 0 on success; a failed call prints its name and errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what) {
  fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
  return 1;
}

static int copy_to_stdout(int fd) {
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0) return fail("read");
    if (n == 0) return 0;
    if (write(1, buffer, (size_t)n) != n) return fail("write to stdout");
  }
}

static int send_all(int fd, const char *text) {
  size_t length = strlen(text);
  while (length > 0) {
    ssize_t n = write(fd, text, length);
    if (n < 0) return fail("write");
    text += n;
    length -= (size_t)n;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct sockaddr_vm address = { .svm_family = AF_VSOCK };
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (fd < 0) return fail("socket");
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    address.svm_cid = (unsigned)strtoul(argv[2], 0, 10);
    address.svm_port = (unsigned)strtoul(argv[3], 0, 10);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) return fail("connect");
    if (send_all(fd, argv[4]) || shutdown(fd, SHUT_WR) < 0) return 1;
    return copy_to_stdout(fd);
  }
  if (argc == 4 && strcmp(argv[1], "serve") == 0) {
    address.svm_cid = VMADDR_CID_ANY;
    address.svm_port = (unsigned)strtoul(argv[2], 0, 10);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) return fail("bind");
    if (listen(fd, 1) < 0) return fail("listen");
    printf("vsock-tool: listening\n");
    fflush(stdout);
    int peer = accept(fd, 0, 0);
    if (peer < 0) return fail("accept");
    if (copy_to_stdout(peer) || send_all(peer, argv[3])) return 1;
    close(peer);
    return 0;
  }
  fprintf(stderr, "usage: vsock-tool send CID PORT MESSAGE | vsock-tool serve PORT REPLY\n");
  return 2;
}
