/**
 * Liveness (SPEC §4): one sweep over every client per interval, instead of a timer per client.
 *
 * @module
 */
import type { Client } from "./client.js";

/**
 * Every `interval` ms: terminates clients silent for longer than `timeout` ms, pings the rest.
 * A dead peer is therefore found within `timeout + interval`.
 */
export class HeartbeatSweep {
  readonly #interval: number;
  readonly #timeout: number;
  readonly #clients: () => Iterable<Client>;
  #timer: NodeJS.Timeout | undefined;

  /**
   * @param interval - ms between sweeps (and ping frames)
   * @param timeout - ms of silence after which a client is terminated
   * @param clients - the clients to sweep, read afresh at each sweep
   */
  constructor(interval: number, timeout: number, clients: () => Iterable<Client>) {
    this.#interval = interval;
    this.#timeout = timeout;
    this.#clients = clients;
  }

  /** Starts sweeping. The timer does not keep the process alive on its own. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sweep(), this.#interval);
    this.#timer.unref();
  }

  /** Stops sweeping. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass: terminate the silent, ping the others. */
  sweep(now: number = Date.now()): void {
    const silent: Client[] = [];
    for (const client of this.#clients()) {
      if (now - client.lastHeartbeatMs > this.#timeout) silent.push(client);
      else client.ping();
    }
    // Terminate after the loop: terminating removes the client from the map being iterated.
    for (const client of silent) client.terminate("heartbeat_timeout");
  }
}
