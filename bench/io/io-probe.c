/*
 * The measuring end of `npm run bench:io`, built static so the same binary
 * runs in the default guest's busybox initramfs and on the host. Each
 * measurement prints one JSON line; times come from CLOCK_MONOTONIC on the
 * side that runs it.
 *
 *   io-probe blk PATH MIB SECONDS     sequential write then read of MIB MiB in
 *                                     1 MiB requests (O_DIRECT where the file
 *                                     system has it, fsync after writing), then
 *                                     4 KiB random reads for SECONDS, one at a time
 *   io-probe tcp-send HOST PORT MIB   connect, send MIB MiB, half-close, wait for EOF
 *   io-probe tcp-recv HOST PORT       connect, read until EOF
 *   io-probe tcp-sink PORT MIB        accept one connection, read MIB MiB, close
 *   io-probe tcp-source PORT MIB      accept one connection, send MIB MiB, close
 *   io-probe vsock-send CID PORT MIB  as tcp-send, over AF_VSOCK
 *   io-probe vsock-sink PORT MIB      as tcp-sink, over AF_VSOCK
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)
#define CHUNK MIB
#define BLOCK 4096

static void fail(const char *what) {
  fprintf(stderr, "io-probe: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static char *aligned(size_t size) {
  void *p;
  if (posix_memalign(&p, BLOCK, size) != 0) fail("posix_memalign");
  memset(p, 0x5a, size);
  return p;
}

static void blk(const char *path, long mib, double seconds) {
  int direct = 1;
  int fd = open(path, O_RDWR | O_DIRECT);
  if (fd < 0 && errno == EINVAL) {
    direct = 0;
    fd = open(path, O_RDWR);
  }
  if (fd < 0) fail("open");
  char *buffer = aligned(CHUNK);
  double start = now();
  for (long i = 0; i < mib; i++)
    if (pwrite(fd, buffer, CHUNK, i * CHUNK) != CHUNK) fail("pwrite");
  if (fsync(fd) < 0) fail("fsync");
  double write_s = now() - start;
  start = now();
  for (long i = 0; i < mib; i++)
    if (pread(fd, buffer, CHUNK, i * CHUNK) != CHUNK) fail("pread");
  double read_s = now() - start;
  long blocks = mib * MIB / BLOCK, reads = 0;
  unsigned seed = 12345;
  start = now();
  double end = start + seconds;
  while (now() < end) {
    for (int i = 0; i < 64; i++, reads++) {
      seed = seed * 1103515245u + 12345u;
      if (pread(fd, buffer, BLOCK, (off_t)((seed >> 4) % blocks) * BLOCK) != BLOCK) fail("pread 4k");
    }
  }
  double random_s = now() - start;
  printf("{\"blk\":{\"seq_write_mbs\":%.2f,\"seq_read_mbs\":%.2f,\"rand_read_iops\":%.0f,\"direct\":%s}}\n",
         mib / write_s * 1.048576, mib / read_s * 1.048576, reads / random_s, direct ? "true" : "false");
}

static int tcp_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return fd;
}

static int connect_tcp(const char *host, int port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) { errno = EINVAL; fail("address"); }
  int fd = tcp_socket();
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("connect");
  return fd;
}

static int connect_vsock(unsigned cid, unsigned port) {
  struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("connect");
  return fd;
}

static int accept_one(int family, int port) {
  int fd;
  if (family == AF_VSOCK) {
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
    fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("bind");
  } else {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
    fd = tcp_socket();
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("bind");
  }
  if (listen(fd, 1) < 0) fail("listen");
  printf("{\"listening\":%d}\n", port);
  fflush(stdout);
  int peer = accept(fd, 0, 0);
  if (peer < 0) fail("accept");
  close(fd);
  return peer;
}

static void send_bytes(int fd, long bytes) {
  char *buffer = aligned(CHUNK);
  while (bytes > 0) {
    ssize_t n = write(fd, buffer, bytes < CHUNK ? bytes : CHUNK);
    if (n < 0) fail("write");
    bytes -= n;
  }
}

static long read_until_eof(int fd, long limit) {
  char *buffer = aligned(CHUNK);
  long total = 0;
  for (;;) {
    ssize_t n = read(fd, buffer, CHUNK);
    if (n < 0) fail("read");
    if (n == 0) return total;
    total += n;
    if (limit > 0 && total >= limit) return total;
  }
}

static void report(const char *name, long bytes, double seconds) {
  printf("{\"%s\":{\"mbs\":%.2f,\"bytes\":%ld}}\n", name, bytes / seconds / 1e6, bytes);
}

/** Send, half-close, and wait for the peer to close: every byte has arrived when the clock stops. */
static void timed_send(const char *name, int fd, long bytes) {
  double start = now();
  send_bytes(fd, bytes);
  shutdown(fd, SHUT_WR);
  read_until_eof(fd, 0);
  report(name, bytes, now() - start);
}

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IOLBF, 0);
  if (argc == 5 && !strcmp(argv[1], "blk")) blk(argv[2], atol(argv[3]), atof(argv[4]));
  else if (argc == 5 && !strcmp(argv[1], "tcp-send")) timed_send("tcp_send", connect_tcp(argv[2], atoi(argv[3])), atol(argv[4]) * MIB);
  else if (argc == 5 && !strcmp(argv[1], "vsock-send")) timed_send("vsock_send", connect_vsock(atoi(argv[2]), atoi(argv[3])), atol(argv[4]) * MIB);
  else if (argc == 4 && !strcmp(argv[1], "tcp-recv")) {
    int fd = connect_tcp(argv[2], atoi(argv[3]));
    double start = now();
    long bytes = read_until_eof(fd, 0);
    report("tcp_recv", bytes, now() - start);
  } else if (argc == 4 && (!strcmp(argv[1], "tcp-sink") || !strcmp(argv[1], "vsock-sink"))) {
    int fd = accept_one(argv[1][0] == 'v' ? AF_VSOCK : AF_INET, atoi(argv[2]));
    long bytes = atol(argv[3]) * MIB;
    double start = now();
    long got = read_until_eof(fd, bytes);
    report(argv[1][0] == 'v' ? "vsock_sink" : "tcp_sink", got, now() - start);
    close(fd);
  } else if (argc == 4 && !strcmp(argv[1], "tcp-source")) {
    int fd = accept_one(AF_INET, atoi(argv[2]));
    double start = now();
    send_bytes(fd, atol(argv[3]) * MIB);
    close(fd);
    report("tcp_source", atol(argv[3]) * MIB, now() - start);
  } else {
    fprintf(stderr, "usage: see the comment at the top of bench/io/io-probe.c\n");
    return 2;
  }
  return 0;
}
