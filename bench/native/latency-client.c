/*
 * The load generator of the latency scenarios (fan-out and echo), in C.
 *
 * Why C: the last-member latency of the fan-out scenario includes the load generator's own time to
 * receive every copy. In node that costs about as much per message as the servers under test spend
 * per member (a read, node's C++ -> JS call per read, frame parsing in JS), so the figure would
 * follow the reader rather than the server (docs/BENCHMARKS.md, "The C latency client"). Here a
 * message costs what the kernel costs: one epoll event and one read. For the echo round trip it also
 * leaves out node's timer and garbage-collector jitter.
 *
 * It opens `count` WebSocket connections to one server, joins every one to a room (unless ROOM is
 * "-"), and then runs rounds. Fan-out: connection 0 sends a broadcast every `intervalMs`, carrying
 * its sequence number and the send time, and every copy's arrival is recorded. Echo: every
 * connection sends `rate` echo requests a second carrying the send time, spread evenly (whenever it
 * wakes, at least every millisecond, what is due by then, round-robin over the connections); every
 * reply's round trip is recorded. It speaks the two protocols the benchmark's servers speak: SPEC §2
 * JSON messages (conduit-ws and the plain ws hub) and Socket.IO 4 over the WebSocket transport
 * (Engine.IO v4 packets).
 *
 * Times are CLOCK_MONOTONIC in milliseconds, the clock node's `process.hrtime()` reads, so they can
 * be compared with the harness's.
 *
 * Usage: latency-client HOST PORT ws|socketio COUNT CONCURRENCY ROOM|-
 * stdout, one JSON line each: {"ready":true,"opened":N} once every connection is open (and in the
 * room, when there is one), then one result per command. stdin, one command per line:
 *   fanout START_AT WARMUP BROADCASTS INTERVAL_MS GRACE_MS
 *     -> {"counts":[...],"lastMs":[...],"firstMs":[...]} (per measured broadcast; -1 = none arrived)
 *   echo START_AT WARMUP_MS DURATION_MS RATE GRACE_MS
 *     -> {"sent":N,"received":N,"samplesMs":[...]} (sends and replies from START_AT + WARMUP_MS on)
 * It exits when stdin closes. Errors: {"error":"..."} on stdout, exit status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum protocol { PROTOCOL_JSON, PROTOCOL_SOCKETIO };

/* A connection's progress from TCP connect to room member. */
enum phase {
  PHASE_CONNECTING,   /* non-blocking connect in flight */
  PHASE_UPGRADING,    /* HTTP upgrade request sent, reading the response head */
  PHASE_SIO_OPEN,     /* Socket.IO: waiting for the Engine.IO open packet ("0{...}") */
  PHASE_SIO_CONNECT,  /* Socket.IO: "40" sent, waiting for the namespace's "40{...}" */
  PHASE_JOINING,      /* join sent, waiting for its confirmation */
  PHASE_MEMBER,       /* in the room (or, without a room, open) */
};

struct connection {
  int fd;
  enum phase phase;
  /* Bytes of an incomplete frame (or response head), kept until the rest arrives. */
  unsigned char *pending;
  size_t pending_length;
  size_t pending_capacity;
};

static enum protocol protocol;
static const char *host;
static int port;
/* The room to join; NULL for none. */
static const char *room;
static struct connection *connections;
static int count;
static int epoll_fd;
/* Connections that are room members. */
static int members;

/* The fan-out round in progress (all zero outside a round). */
static struct {
  int active;
  int warmup;
  int broadcasts;
  long *counts;
  double *last_ms;
  double *first_ms;
  long received;
  long expected;
} round_state;

/* The echo round in progress (all zero outside a round). */
static struct {
  int active;
  double measure_from;
  double *samples;
  long received;
  long replies;
} echo_state;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  /* A message may quote what the server sent: escape it for JSON. */
  printf("{\"error\":\"");
  for (const char *p = message; *p != '\0'; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  printf("\"}\n");
  fflush(stdout);
  exit(1);
}

static void append_pending(struct connection *c, const unsigned char *data, size_t length) {
  if (c->pending_length + length > c->pending_capacity) {
    size_t capacity = c->pending_capacity == 0 ? 4096 : c->pending_capacity;
    while (capacity < c->pending_length + length) capacity *= 2;
    c->pending = realloc(c->pending, capacity);
    if (c->pending == NULL) fail("out of memory");
    c->pending_capacity = capacity;
  }
  memcpy(c->pending + c->pending_length, data, length);
  c->pending_length += length;
}

/* Writes all of `data`; the frames here are small and the socket's send buffer is empty or nearly so. */
static void write_all(struct connection *c, const void *data, size_t length) {
  const char *bytes = data;
  while (length > 0) {
    ssize_t written = write(c->fd, bytes, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        /* Only under a stalled server; a short wait keeps this simple and is never hit when measuring. */
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
        continue;
      }
      fail("write: %s", strerror(errno));
    }
    bytes += written;
    length -= (size_t)written;
  }
}

/* Sends one masked frame (clients must mask, RFC 6455 §5.3). */
static void send_frame(struct connection *c, int opcode, const char *payload, size_t length) {
  unsigned char frame[16 + 1024];
  if (length > 1024) fail("frame too large");
  size_t header = 0;
  frame[header++] = (unsigned char)(0x80 | opcode);
  if (length < 126) {
    frame[header++] = (unsigned char)(0x80 | length);
  } else {
    frame[header++] = 0x80 | 126;
    frame[header++] = (unsigned char)(length >> 8);
    frame[header++] = (unsigned char)(length & 0xff);
  }
  uint32_t key = (uint32_t)rand();
  unsigned char mask[4] = {(unsigned char)key, (unsigned char)(key >> 8), (unsigned char)(key >> 16), (unsigned char)(key >> 24)};
  memcpy(frame + header, mask, 4);
  header += 4;
  for (size_t i = 0; i < length; i++) frame[header + i] = (unsigned char)payload[i] ^ mask[i & 3];
  write_all(c, frame, header + length);
}

static void send_text(struct connection *c, const char *text) { send_frame(c, 0x1, text, strlen(text)); }

/*
 * Sends one message in the server's protocol: `json_format` for SPEC §2 servers, `socketio_format` for
 * Socket.IO, both printf formats taking the same arguments. Messages here are well under 256 bytes.
 */
static void send_message(struct connection *c, const char *json_format, const char *socketio_format, ...) {
  char message[256];
  va_list args;
  va_start(args, socketio_format);
  vsnprintf(message, sizeof message, protocol == PROTOCOL_JSON ? json_format : socketio_format, args);
  va_end(args);
  send_text(c, message);
}

static void become_member(struct connection *c) {
  c->phase = PHASE_MEMBER;
  members++;
}

static void send_join(struct connection *c) {
  send_message(c, "{\"type\":\"join_room\",\"data\":{\"room\":\"%s\"}}", "420[\"join_room\",{\"room\":\"%s\"}]", room);
  c->phase = PHASE_JOINING;
}

/* The connection is upgraded (and, for Socket.IO, in its namespace): join the room, if there is one. */
static void on_open(struct connection *c) {
  if (room != NULL) return send_join(c);
  become_member(c);
}

static void send_echo(struct connection *c, double sent_at) {
  send_message(c, "{\"type\":\"echo\",\"data\":%.4f}", "42[\"echo\",%.4f]", sent_at);
}

static void send_broadcast(struct connection *c, int seq, double sent_at) {
  send_message(c, "{\"type\":\"broadcast\",\"data\":{\"room\":\"%s\",\"type\":\"tick\",\"payload\":{\"seq\":%d,\"t\":%.4f}}}",
               "42[\"broadcast\",{\"room\":\"%s\",\"type\":\"tick\",\"payload\":{\"seq\":%d,\"t\":%.4f}}]", room, seq, sent_at);
}

/* Reads `"key":<number>` from a payload; returns 0 when the key is not there. */
static int read_number(const unsigned char *payload, size_t length, const char *key, const unsigned char **after, double *value) {
  size_t key_length = strlen(key);
  const unsigned char *at = memmem(payload, length, key, key_length);
  if (at == NULL) return 0;
  const unsigned char *start = at + key_length;
  const unsigned char *end = payload + length;
  char number[48];
  size_t n = 0;
  while (start + n < end && n < sizeof number - 1 &&
         ((start[n] >= '0' && start[n] <= '9') || start[n] == '.' || start[n] == '-' || start[n] == 'e' || start[n] == 'E' ||
          start[n] == '+'))
    n++;
  if (n == 0) return 0;
  memcpy(number, start, n);
  number[n] = '\0';
  *value = strtod(number, NULL);
  *after = start + n;
  return 1;
}

static void on_tick(const unsigned char *payload, size_t length, double at) {
  const unsigned char *after;
  double seq, sent_at;
  if (!read_number(payload, length, "\"seq\":", &after, &seq)) return;
  if (!read_number(after, (size_t)(payload + length - after), "\"t\":", &after, &sent_at)) return;
  if (!round_state.active) return;
  long k = (long)seq - round_state.warmup;
  if (k < 0 || k >= round_state.broadcasts) return;
  double ms = at - sent_at;
  round_state.counts[k]++;
  if (ms > round_state.last_ms[k]) round_state.last_ms[k] = ms;
  if (round_state.first_ms[k] < 0 || ms < round_state.first_ms[k]) round_state.first_ms[k] = ms;
  round_state.received++;
}

/* An echo reply, {"type":"echo","data":{"original":T}} or 42["echo",{"original":T}]. */
static void on_echo_reply(const unsigned char *payload, size_t length, double at) {
  const unsigned char *after;
  double sent_at;
  if (!read_number(payload, length, "\"original\":", &after, &sent_at)) return;
  echo_state.replies++;
  if (sent_at >= echo_state.measure_from) echo_state.samples[echo_state.received++] = at - sent_at;
}

static int starts_with(const unsigned char *payload, size_t length, const char *prefix) {
  size_t n = strlen(prefix);
  return length >= n && memcmp(payload, prefix, n) == 0;
}

/* One whole text frame from the server. */
static void on_text(struct connection *c, const unsigned char *payload, size_t length, double at) {
  if (c->phase == PHASE_MEMBER) {
    if (protocol == PROTOCOL_SOCKETIO && length == 1 && payload[0] == '2') return send_text(c, "3"); /* Engine.IO ping */
    if (echo_state.active) return on_echo_reply(payload, length, at);
    return on_tick(payload, length, at);
  }
  if (protocol == PROTOCOL_SOCKETIO) {
    if (length == 1 && payload[0] == '2') return send_text(c, "3");
    if (c->phase == PHASE_SIO_OPEN && starts_with(payload, length, "0{")) {
      send_text(c, "40");
      c->phase = PHASE_SIO_CONNECT;
    } else if (c->phase == PHASE_SIO_CONNECT && starts_with(payload, length, "40")) {
      on_open(c);
    } else if (c->phase == PHASE_JOINING && starts_with(payload, length, "430")) {
      if (memmem(payload, length, "\"error\"", 7) != NULL) fail("join refused: %.*s", (int)(length < 200 ? length : 200), payload);
      become_member(c);
    }
    return;
  }
  if (c->phase == PHASE_JOINING) {
    if (memmem(payload, length, "\"type\":\"room_joined\"", 20) != NULL) {
      become_member(c);
    } else if (memmem(payload, length, "\"type\":\"error\"", 14) != NULL) {
      fail("join refused: %.*s", (int)(length < 200 ? length : 200), payload);
    }
  }
}

/* Cuts whole frames out of `data`; returns how many bytes were consumed. Server frames are unmasked. */
static size_t on_frames(struct connection *c, const unsigned char *data, size_t length, double at) {
  size_t offset = 0;
  for (;;) {
    size_t available = length - offset;
    if (available < 2) break;
    int opcode = data[offset] & 0x0f;
    uint64_t payload_length = data[offset + 1] & 0x7f;
    size_t header = 2;
    if (payload_length == 126) {
      if (available < 4) break;
      payload_length = ((uint64_t)data[offset + 2] << 8) | data[offset + 3];
      header = 4;
    } else if (payload_length == 127) {
      if (available < 10) break;
      payload_length = 0;
      for (int i = 0; i < 8; i++) payload_length = (payload_length << 8) | data[offset + 2 + i];
      header = 10;
    }
    if (available < header + payload_length) break;
    const unsigned char *payload = data + offset + header;
    offset += header + (size_t)payload_length;
    if (opcode == 0x1) {
      on_text(c, payload, (size_t)payload_length, at);
    } else if (opcode == 0x9) {
      send_frame(c, 0xa, (const char *)payload, (size_t)payload_length);
    } else if (opcode == 0x8) {
      fail("the server closed connection %ld", (long)(c - connections));
    }
  }
  return offset;
}

/* The HTTP upgrade response: on 101, the connection moves on; bytes after the head are frames. */
static size_t on_upgrade_response(struct connection *c, const unsigned char *data, size_t length, double at) {
  const unsigned char *end = memmem(data, length, "\r\n\r\n", 4);
  if (end == NULL) {
    if (length > 16384) fail("upgrade response too large");
    return 0;
  }
  if (length < 12 || memcmp(data, "HTTP/1.1 101", 12) != 0) fail("upgrade refused: %.*s", (int)(length < 12 ? length : 12), data);
  size_t head = (size_t)(end - data) + 4;
  if (protocol == PROTOCOL_SOCKETIO) {
    c->phase = PHASE_SIO_OPEN;
  } else {
    on_open(c);
  }
  return head + on_frames(c, data + head, length - head, at);
}

static unsigned char read_buffer[256 * 1024];

static void on_readable(struct connection *c) {
  ssize_t n = read(c->fd, read_buffer, sizeof read_buffer);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    fail("read: %s", strerror(errno));
  }
  if (n == 0) fail("the server ended connection %ld", (long)(c - connections));
  double at = now_ms();
  const unsigned char *data = read_buffer;
  size_t length = (size_t)n;
  if (c->pending_length > 0) {
    append_pending(c, read_buffer, length);
    data = c->pending;
    length = c->pending_length;
  }
  size_t used = c->phase == PHASE_UPGRADING ? on_upgrade_response(c, data, length, at) : on_frames(c, data, length, at);
  if (data == c->pending) {
    memmove(c->pending, c->pending + used, length - used);
    c->pending_length = length - used;
  } else if (used < length) {
    append_pending(c, data + used, length - used);
  }
}

static void on_connected(struct connection *c) {
  int error = 0;
  socklen_t size = sizeof error;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) fail("connect: %s", strerror(error));
  char request[512];
  int length = snprintf(request, sizeof request,
                        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                        protocol == PROTOCOL_JSON ? "/ws" : "/socket.io/?EIO=4&transport=websocket", host, port);
  c->phase = PHASE_UPGRADING;
  struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event) < 0) fail("epoll_ctl: %s", strerror(errno));
  write_all(c, request, (size_t)length);
}

static void start_connect(struct connection *c, const struct sockaddr_in *address) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->phase = PHASE_CONNECTING;
  if (connect(c->fd, (const struct sockaddr *)address, sizeof *address) < 0 && errno != EINPROGRESS) fail("connect: %s", strerror(errno));
  struct epoll_event event = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) < 0) fail("epoll_ctl: %s", strerror(errno));
}

#define MAX_EVENTS 1024
static struct epoll_event events[MAX_EVENTS];

/* Handles what is ready, waiting at most `timeout_ms` (-1: until something is). */
static int poll_once(int timeout_ms) {
  int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return 0;
    fail("epoll_wait: %s", strerror(errno));
  }
  for (int i = 0; i < ready; i++) {
    struct connection *c = events[i].data.ptr;
    if (c->phase == PHASE_CONNECTING) {
      on_connected(c);
    } else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      on_readable(c);
    }
  }
  return ready;
}

/* Opens every connection, at most `concurrency` before they are room members. */
static void open_all(int concurrency) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) fail("not an IPv4 address: %s", host);
  int started = 0;
  double deadline = now_ms() + 120000;
  while (members < count) {
    while (started < count && started - members < concurrency) start_connect(&connections[started++], &address);
    poll_once(100);
    if (now_ms() > deadline) fail("only %d of %d connections joined within 120 s", members, count);
  }
}

static void print_numbers(const char *name, const double *values, int n, int last) {
  printf("\"%s\":[", name);
  for (int i = 0; i < n; i++) printf(i == 0 ? "%.4f" : ",%.4f", values[i]);
  printf(last ? "]" : "],");
}

static void run_fanout(double start_at, int warmup, int broadcasts, double interval_ms, double grace_ms) {
  round_state.warmup = warmup;
  round_state.broadcasts = broadcasts;
  round_state.counts = calloc((size_t)broadcasts, sizeof(long));
  round_state.last_ms = malloc((size_t)broadcasts * sizeof(double));
  round_state.first_ms = malloc((size_t)broadcasts * sizeof(double));
  if (round_state.counts == NULL || round_state.last_ms == NULL || round_state.first_ms == NULL) fail("out of memory");
  for (int k = 0; k < broadcasts; k++) round_state.last_ms[k] = round_state.first_ms[k] = -1;
  round_state.received = 0;
  round_state.expected = (long)broadcasts * count;
  round_state.active = 1;

  int total = warmup + broadcasts;
  int seq = 0;
  double deadline = start_at + total * interval_ms + grace_ms;
  for (;;) {
    double at = now_ms();
    /* Each send is scheduled from the start time, not from the previous send, so delays do not add up. */
    while (seq < total && at >= start_at + seq * interval_ms) {
      send_broadcast(&connections[0], seq, at);
      seq++;
      at = now_ms();
    }
    if (round_state.received >= round_state.expected || at >= deadline) break;
    double until = seq < total ? start_at + seq * interval_ms : deadline;
    double wait = until - at;
    /* epoll_wait counts whole milliseconds: wake up early and spin the rest on the clock. */
    poll_once(wait >= 1 ? (int)wait : 0);
  }
  round_state.active = 0;

  printf("{\"counts\":[");
  for (int k = 0; k < broadcasts; k++) printf(k == 0 ? "%ld" : ",%ld", round_state.counts[k]);
  printf("],");
  print_numbers("lastMs", round_state.last_ms, broadcasts, 0);
  print_numbers("firstMs", round_state.first_ms, broadcasts, 1);
  printf("}\n");
  fflush(stdout);
  free(round_state.counts);
  free(round_state.last_ms);
  free(round_state.first_ms);
}

static void run_echo(double start_at, double warmup_ms, double duration_ms, double rate, double grace_ms) {
  double per_second = count * rate;
  long total = lround(per_second * (warmup_ms + duration_ms) / 1000);
  echo_state.measure_from = start_at + warmup_ms;
  echo_state.samples = malloc((size_t)(total > 0 ? total : 1) * sizeof(double));
  if (echo_state.samples == NULL) fail("out of memory");
  echo_state.received = 0;
  echo_state.replies = 0;
  echo_state.active = 1;

  long sent = 0;
  long sent_measured = 0;
  double deadline = start_at + warmup_ms + duration_ms + grace_ms;
  for (;;) {
    double at = now_ms();
    if (at >= start_at) {
      long due = (long)floor((at - start_at) * per_second / 1000);
      if (due > total) due = total;
      while (sent < due) {
        at = now_ms();
        send_echo(&connections[sent % count], at);
        if (at >= echo_state.measure_from) sent_measured++;
        sent++;
      }
    }
    if (echo_state.replies >= total || at >= deadline) break;
    /* Wake up every millisecond to send what is due (before the start: at the start). */
    poll_once(sent < total ? (at < start_at - 1 ? (int)(start_at - at) : 1) : (int)(deadline - at) + 1);
  }
  echo_state.active = 0;

  printf("{\"sent\":%ld,\"received\":%ld,", sent_measured, echo_state.received);
  print_numbers("samplesMs", echo_state.samples, (int)echo_state.received, 1);
  printf("}\n");
  fflush(stdout);
  free(echo_state.samples);
}

int main(int argc, char **argv) {
  if (argc != 7) fail("usage: latency-client HOST PORT ws|socketio COUNT CONCURRENCY ROOM|-");
  host = argv[1];
  port = atoi(argv[2]);
  if (strcmp(argv[3], "ws") == 0) {
    protocol = PROTOCOL_JSON;
  } else if (strcmp(argv[3], "socketio") == 0) {
    protocol = PROTOCOL_SOCKETIO;
  } else {
    fail("unknown protocol: %s", argv[3]);
  }
  count = atoi(argv[4]);
  int concurrency = atoi(argv[5]);
  room = strcmp(argv[6], "-") == 0 ? NULL : argv[6];
  if (count < 1 || concurrency < 1 || (room != NULL && (strlen(room) > 64 || strpbrk(room, "\"\\") != NULL))) fail("bad arguments");
  srand((unsigned)getpid());

  connections = calloc((size_t)count, sizeof *connections);
  if (connections == NULL) fail("out of memory");
  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) fail("epoll_create1: %s", strerror(errno));
  open_all(concurrency);
  printf("{\"ready\":true,\"opened\":%d}\n", count);
  fflush(stdout);

  /* Commands arrive on stdin; between rounds heartbeats must still be answered, so stdin joins the epoll
     set while a command is awaited (marked by a NULL pointer). Commands come one at a time, each after
     the previous result, so stdio's buffering never holds a second line that epoll would not report. */
  char line[256];
  for (;;) {
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event) < 0 && errno != EEXIST) fail("epoll_ctl stdin: %s", strerror(errno));
    int have_line = 0;
    while (!have_line) {
      int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        fail("epoll_wait: %s", strerror(errno));
      }
      for (int i = 0; i < ready; i++) {
        if (events[i].data.ptr == NULL) {
          have_line = 1;
        } else {
          on_readable(events[i].data.ptr);
        }
      }
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
    if (fgets(line, sizeof line, stdin) == NULL) return 0;
    double start_at, interval_ms, grace_ms, warmup_ms, duration_ms, rate;
    int warmup, broadcasts;
    if (sscanf(line, "fanout %lf %d %d %lf %lf", &start_at, &warmup, &broadcasts, &interval_ms, &grace_ms) == 5) {
      if (room == NULL) fail("fanout needs a room");
      run_fanout(start_at, warmup, broadcasts, interval_ms, grace_ms);
    } else if (sscanf(line, "echo %lf %lf %lf %lf %lf", &start_at, &warmup_ms, &duration_ms, &rate, &grace_ms) == 5) {
      run_echo(start_at, warmup_ms, duration_ms, rate, grace_ms);
    } else {
      fail("unknown command");
    }
  }
}
