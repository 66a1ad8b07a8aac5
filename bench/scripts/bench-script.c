/*
 * The benchmark's auth script, in C so that the script is never what is being measured.
 *
 *   bench-script generic|ejabberd DELAY_MS
 *
 * Answers `auth:USER:SERVER:PASSWORD` with 1 when PASSWORD is "pw-" USER, `isuser` with 1, and
 * anything else with 0. DELAY_MS = 0: "instant" -- every complete request in one read is answered,
 * and the answers leave in one write (what any buffered script that flushes when its input runs
 * dry does). DELAY_MS > 0: each request is answered on its own after sleeping that long, one at a
 * time (a script that waits on a database).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IN_SIZE (1 << 20)
#define OUT_SIZE (1 << 18)

static char in[IN_SIZE];
static char out[OUT_SIZE];
static size_t out_len;
static int ejabberd;
static long delay_ms;

static void flush_out(void) {
  size_t off = 0;
  while (off < out_len) {
    ssize_t n = write(1, out + off, out_len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      exit(1);
    }
    off += (size_t)n;
  }
  out_len = 0;
}

/* 1 when the request deserves "yes". `req` is not NUL-terminated. */
static int decide(const char *req, size_t len) {
  if (len >= 7 && memcmp(req, "isuser:", 7) == 0) return 1;
  if (len < 5 || memcmp(req, "auth:", 5) != 0) return 0;
  const char *user = req + 5, *end = req + len;
  const char *c1 = memchr(user, ':', (size_t)(end - user));
  if (!c1) return 0;
  const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
  if (!c2) return 0;
  const char *pw = c2 + 1;
  size_t user_len = (size_t)(c1 - user), pw_len = (size_t)(end - pw);
  return pw_len == user_len + 3 && memcmp(pw, "pw-", 3) == 0 && memcmp(pw + 3, user, user_len) == 0;
}

static void answer(int yes) {
  if (out_len + 4 > OUT_SIZE) flush_out();
  if (ejabberd) {
    out[out_len++] = 0;
    out[out_len++] = 2;
    out[out_len++] = 0;
    out[out_len++] = (char)yes;
  } else {
    out[out_len++] = yes ? '1' : '0';
    out[out_len++] = '\n';
  }
  if (delay_ms > 0) {
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    flush_out();
  }
}

/* Answers every complete request in in[0..len); returns how many bytes it consumed. */
static size_t consume(size_t len) {
  size_t pos = 0;
  for (;;) {
    if (ejabberd) {
      if (len - pos < 2) break;
      size_t n = ((size_t)(unsigned char)in[pos] << 8) | (unsigned char)in[pos + 1];
      if (len - pos < 2 + n) break;
      answer(decide(in + pos + 2, n));
      pos += 2 + n;
    } else {
      char *nl = memchr(in + pos, '\n', len - pos);
      if (!nl) break;
      answer(decide(in + pos, (size_t)(nl - (in + pos))));
      pos = (size_t)(nl - in) + 1;
    }
  }
  return pos;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "generic") != 0 && strcmp(argv[1], "ejabberd") != 0)) {
    fprintf(stderr, "usage: %s generic|ejabberd DELAY_MS\n", argv[0]);
    return 2;
  }
  ejabberd = strcmp(argv[1], "ejabberd") == 0;
  delay_ms = strtol(argv[2], NULL, 10);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, in + len, IN_SIZE - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    size_t used = consume(len);
    flush_out();
    if (used > 0) {
      memmove(in, in + used, len - used);
      len -= used;
    } else if (len == IN_SIZE) {
      return 1; /* a request longer than the buffer: no protocol allows that */
    }
  }
  flush_out();
  return 0;
}
