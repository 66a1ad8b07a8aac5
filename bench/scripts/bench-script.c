/*
 * The benchmark's auth script, in C so that the script is never what is being measured.
 *
 *   bench-script generic|ejabberd|tagged DELAY_MS [SCRAM_FILE]
 *
 * Answers `auth:USER:SERVER:PASSWORD` with 1 when PASSWORD is "pw-" USER, `isuser` with 1, and
 * anything else with 0. DELAY_MS = 0: "instant" -- every complete request in one read is answered,
 * and the answers leave in one write (what any buffered script that flushes when its input runs
 * dry does). DELAY_MS > 0: each request is answered on its own after sleeping that long, one at a
 * time (a script that waits on a database).
 *
 * tagged (`ID:auth:USER:SERVER:PASSWORD` -> `ID:1`): every request is answered DELAY_MS after it
 * arrived, however many are waiting -- what an async script does whose backend call takes that
 * long (an HTTP service, a database pool). Answers that fall due together leave in one write.
 *
 * SCRAM_FILE (generic and tagged): lines `USER 1:ITERATIONS:SALT:STOREDKEY:SERVERKEY`, the answer
 * to `scram:USER:SERVER:sha-256`; other users and hashes get 0.
 */
#include <poll.h>
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
static int tagged;
static long delay_ms;

#define MAX_SCRAM_USERS 1024
static char *scram_users[MAX_SCRAM_USERS];
static char *scram_answers[MAX_SCRAM_USERS];
static size_t scram_count;

static void load_scram(const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) {
    perror(file);
    exit(2);
  }
  char line[1024];
  while (scram_count < MAX_SCRAM_USERS && fgets(line, sizeof line, f)) {
    char *space = strchr(line, ' ');
    if (!space) continue;
    *space = 0;
    space[1 + strcspn(space + 1, "\n")] = 0;
    scram_users[scram_count] = strdup(line);
    scram_answers[scram_count++] = strdup(space + 1);
  }
  fclose(f);
}

/* The answer to a `scram:USER:SERVER:HASH` request, or NULL when the request is another kind. */
static const char *scram_answer(const char *req, size_t len) {
  if (len < 6 || memcmp(req, "scram:", 6) != 0) return NULL;
  const char *user = req + 6, *end = req + len;
  const char *c1 = memchr(user, ':', (size_t)(end - user));
  if (!c1) return "0";
  const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
  if (!c2 || (size_t)(end - c2 - 1) != 7 || memcmp(c2 + 1, "sha-256", 7) != 0) return "0";
  size_t user_len = (size_t)(c1 - user);
  for (size_t i = 0; i < scram_count; i++)
    if (strlen(scram_users[i]) == user_len && memcmp(scram_users[i], user, user_len) == 0) return scram_answers[i];
  return "0";
}

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

static void answer_text(const char *text) {
  size_t n = strlen(text);
  if (out_len + n + 1 > OUT_SIZE) flush_out();
  memcpy(out + out_len, text, n);
  out_len += n;
  out[out_len++] = '\n';
  if (delay_ms > 0) {
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    flush_out();
  }
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
      const char *scram = scram_answer(in + pos, (size_t)(nl - (in + pos)));
      if (scram)
        answer_text(scram);
      else
        answer(decide(in + pos, (size_t)(nl - (in + pos))));
      pos = (size_t)(nl - in) + 1;
    }
  }
  return pos;
}

/* tagged: answers waiting for their time, in arrival order (every request waits the same delay). */
#define QUEUE_SIZE 65536
struct pending {
  double due_ms;
  char id[17];
  const char *text;
};
static struct pending queue[QUEUE_SIZE];
static size_t q_head, q_len;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void put_answer(const char *id, const char *text) {
  size_t id_len = strlen(id), text_len = strlen(text);
  if (out_len + id_len + text_len + 2 > OUT_SIZE) flush_out();
  memcpy(out + out_len, id, id_len);
  out_len += id_len;
  out[out_len++] = ':';
  memcpy(out + out_len, text, text_len);
  out_len += text_len;
  out[out_len++] = '\n';
}

/* Takes one `ID:fields` line: answers it now (no delay) or queues it. */
static void tagged_request(const char *line, size_t len) {
  const char *colon = memchr(line, ':', len);
  if (!colon || colon == line || colon - line > 16) exit(1);
  char id[17];
  memcpy(id, line, (size_t)(colon - line));
  id[colon - line] = 0;
  const char *text = scram_answer(colon + 1, (size_t)(line + len - colon - 1));
  if (!text) text = decide(colon + 1, (size_t)(line + len - colon - 1)) ? "1" : "0";
  if (delay_ms <= 0) {
    put_answer(id, text);
    return;
  }
  if (q_len == QUEUE_SIZE) exit(1);
  struct pending *p = &queue[(q_head + q_len++) % QUEUE_SIZE];
  p->due_ms = now_ms() + (double)delay_ms;
  memcpy(p->id, id, sizeof id);
  p->text = text;
}

/* Writes every answer that is due; returns ms until the next one (-1: none waiting). */
static int answer_due(void) {
  double now = now_ms();
  while (q_len > 0 && queue[q_head].due_ms <= now) {
    put_answer(queue[q_head].id, queue[q_head].text);
    q_head = (q_head + 1) % QUEUE_SIZE;
    q_len--;
  }
  flush_out();
  if (q_len == 0) return -1;
  return (int)(queue[q_head].due_ms - now) + 1;
}

static int tagged_main(void) {
  size_t len = 0;
  int open_in = 1;
  while (open_in || q_len > 0) {
    struct pollfd fd = {0, POLLIN, 0};
    int wait = answer_due();
    if (!open_in) {
      if (wait > 0) {
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
      }
      continue;
    }
    int ready = poll(&fd, 1, wait);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = read(0, in + len, IN_SIZE - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      open_in = 0;
      continue;
    }
    len += (size_t)n;
    size_t pos = 0;
    char *nl;
    while ((nl = memchr(in + pos, '\n', len - pos)) != NULL) {
      tagged_request(in + pos, (size_t)(nl - (in + pos)));
      pos = (size_t)(nl - in) + 1;
    }
    memmove(in, in + pos, len - pos);
    len -= pos;
    if (len == IN_SIZE) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4 || (strcmp(argv[1], "generic") != 0 && strcmp(argv[1], "ejabberd") != 0 && strcmp(argv[1], "tagged") != 0)) {
    fprintf(stderr, "usage: %s generic|ejabberd|tagged DELAY_MS [SCRAM_FILE]\n", argv[0]);
    return 2;
  }
  if (argc == 4) load_scram(argv[3]);
  ejabberd = strcmp(argv[1], "ejabberd") == 0;
  tagged = strcmp(argv[1], "tagged") == 0;
  delay_ms = strtol(argv[2], NULL, 10);
  if (tagged) return tagged_main();
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
