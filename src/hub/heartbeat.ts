/**
 * Liveness (docs/PROTOCOL.md): one sweep timer for every client, instead of a timer per client.
 *
 * The sweep is spread over the interval: every tick visits the next slice of the clients, so each is
 * pinged once per `heartbeatInterval`, but never all in one go. Pinging every client at once costs a
 * write per client in one event-loop turn, and every broadcast or reply that falls into that turn
 * waits for it; in slices of a thirtieth the longest stall is a thirtieth. uWebSockets and Centrifugo
 * spread their pings in the same spirit (timer wheels, per-client timers).
 *
 * A client is not pinged before it is `firstPingAfter` ms old (half the slack between timeout and
 * interval, at most an interval: 15 s at the defaults). Its handshake has just shown it alive, and
 * the first ping would only ask what the handshake answered; the silence it is judged by still runs
 * from the handshake, so a peer that dies at once is found as soon as before. This keeps the sweep out
 * of connection bursts (a reconnect storm after a deploy): with
 * ping-on-first-visit, a thirtieth of a burst's clients got a ping, and sent a pong, every second of
 * the burst. Half the slack leaves the other half for the first pong: a client is first pinged at the
 * first visit past that age, within `firstPingAfter + interval` of its handshake, which is at most
 * `timeout - (timeout - interval) / 2`. engine.io likewise sends the first ping an interval after
 * the handshake.
 *
 * Between ticks the sweep keeps only a number: the acceptance order of the last client it visited.
 * Each tick iterates the hub's map afresh and skips the clients up to that number (the map iterates in
 * acceptance order). An earlier version kept the map's iterator between ticks; V8 keeps every table
 * the map outgrows or shrinks out of alive for as long as an iterator points into it, with the
 * removed clients in it, so under churn a second's worth of closed clients stayed on the heap.
 * Skipping costs a few nanoseconds per client passed over.
 *
 * @module
 */

/** The part of a client the sweep uses. */
export interface HeartbeatTarget {
  /**
   * Acceptance order: larger for clients accepted later. The iterable the sweep is given must
   * yield clients in increasing order of it (a Map in insertion order does).
   */
  readonly sequence: number;
  /** Milliseconds since the epoch of the handshake. */
  readonly connectedAtMs: number;
  /** Milliseconds since the epoch of the last pong or message. */
  readonly lastHeartbeatMs: number;
  /** Sends a ping frame. */
  ping(): void;
  /** Ends the connection without a closing handshake. */
  terminate(reason: "heartbeat_timeout"): void;
}

/** Ticks are at least this far apart: below it a slice would be a handful of clients. */
const MIN_TICK_MS = 100;
/** At most this many ticks per interval (one a second at the default 30 s). */
const MAX_SLICES = 30;

/**
 * Every tick (`interval / slices` ms, slices = interval / 100 ms, 1 to 30): visits the next
 * `⌈clients / slices⌉` clients, terminating those silent for longer than `timeout` ms and pinging the
 * rest (those at least {@link HeartbeatSweep.firstPingAfter} ms old). A full pass takes about
 * `interval`, so a dead peer is found within `timeout + interval` (plus a tick's rounding).
 */
export class HeartbeatSweep {
  readonly #timeout: number;
  readonly #slices: number;
  readonly #tickMs: number;
  readonly #firstPingAfter: number;
  readonly #clients: () => Iterable<HeartbeatTarget>;
  readonly #count: () => number;
  /** Where the current pass is: the sequence of the last client visited (-1: at the start). */
  #visitedUpTo = -1;
  #timer: NodeJS.Timeout | undefined;

  /**
   * @param interval - ms between two pings of one client
   * @param timeout - ms of silence after which a client is terminated
   * @param clients - the clients to sweep, in increasing {@link HeartbeatTarget.sequence}; clients
   *   added during a pass (with higher numbers) are reached in that pass
   * @param count - how many clients there are now (sizes the slice)
   */
  constructor(interval: number, timeout: number, clients: () => Iterable<HeartbeatTarget>, count: () => number) {
    this.#timeout = timeout;
    this.#slices = Math.min(MAX_SLICES, Math.max(1, Math.floor(interval / MIN_TICK_MS)));
    this.#tickMs = interval / this.#slices;
    this.#firstPingAfter = Math.min(interval, (timeout - interval) / 2);
    this.#clients = clients;
    this.#count = count;
  }

  /** Ticks per interval. */
  get slices(): number {
    return this.#slices;
  }

  /** A client younger than this (ms since its handshake) is not pinged yet: see the module notes. */
  get firstPingAfter(): number {
    return this.#firstPingAfter;
  }

  /** Starts sweeping. The timer does not keep the process alive on its own. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#tickMs);
    this.#timer.unref();
  }

  /** Stops sweeping; the next start begins a new pass. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#visitedUpTo = -1;
  }

  /** One slice: terminate the silent, ping the others that are old enough. */
  tick(now: number = Date.now()): void {
    const batch = Math.ceil(this.#count() / this.#slices);
    const silent: HeartbeatTarget[] = [];
    let visited = 0;
    // At most two runs over the map: the rest of this pass, then (if the pass ends within this
    // tick's slice) the start of the next one.
    for (let run = 0; run < 2 && visited < batch; run++) {
      for (const client of this.#clients()) {
        if (client.sequence <= this.#visitedUpTo) continue;
        if (visited === batch) break;
        visited++;
        this.#visitedUpTo = client.sequence;
        if (now - client.lastHeartbeatMs > this.#timeout) silent.push(client);
        else if (now - client.connectedAtMs >= this.#firstPingAfter) client.ping();
      }
      // Reached the end of the map: the pass is complete and the next one starts at the beginning.
      if (visited < batch) this.#visitedUpTo = -1;
    }
    // Terminate after the loop: terminating removes the client from the map being iterated.
    for (const client of silent) client.terminate("heartbeat_timeout");
  }
}
