/**
 * What a client may send and cause: every frame takes a token of the message rate (control frames
 * too), and every request that reaches other clients is charged to the work budget by the deliveries
 * it causes (docs/PROTOCOL.md). Over either, the message is dropped; sustained, the client is closed
 * with 1008, and nothing more is read from it.
 *
 * @module
 */
import { CloseCode, ErrorCode } from "../errors.js";
import type { Logger } from "../logger.js";
import type { RateLimitOptions } from "../options.js";
import { parseMessage } from "../protocol/message.js";
import type { Connection } from "./client.js";
import { RateLimiter } from "./rate-limiter.js";

/** The largest dropped message whose `id` is read for the `rate_limited` reply. */
const ID_READ_LIMIT = 4096;

/** The rate and budget checks of every connection; owned by the hub. */
export class ClientLimits {
  readonly #limit: RateLimitOptions | false;
  readonly #maxMessageDepth: number;
  readonly #logger: Logger;

  /**
   * @param limit - the `rateLimit` option (false: nothing is limited)
   * @param maxMessageDepth - for reading a dropped message's id
   */
  constructor(limit: RateLimitOptions | false, maxMessageDepth: number, logger: Logger) {
    this.#limit = limit;
    this.#maxMessageDepth = maxMessageDepth;
    this.#logger = logger;
  }

  /** Whether clients' messages are limited at all (the `rateLimit` option is not false). */
  get enabled(): boolean {
    return this.#limit !== false;
  }

  /**
   * A data frame arrived at `now`: takes its token.
   *
   * @returns true when it may be served; false when it was dropped (the client was told, or closed)
   */
  admit(client: Connection, data: Buffer, isBinary: boolean, now: number): boolean {
    const limit = this.#limit;
    if (!limit) return true;
    client.rateLimiter ??= new RateLimiter(limit, now);
    const decision = client.rateLimiter.take(now);
    if (decision === "allow") return true;
    if (decision === "abuse") {
      this.#closeForAbuse(client);
      return false;
    }
    // The id is read from small messages only: a dropped message must cost less than a served one.
    const parsed = isBinary || data.length > ID_READ_LIMIT ? undefined : parseMessage(data.toString(), this.#maxMessageDepth);
    const id = parsed === undefined ? undefined : parsed.ok ? parsed.message.id : parsed.id;
    client.sendError(ErrorCode.RateLimited, "rate limit exceeded: message dropped", id);
    return false;
  }

  /**
   * A ping or pong frame arrived: it takes a message token like any frame. There is nothing to reply
   * to a control frame, so one over the rate only counts as dropped.
   */
  controlFrame(client: Connection): void {
    const limit = this.#limit;
    if (!limit || client.closeReason !== undefined) return;
    const now = Date.now();
    client.rateLimiter ??= new RateLimiter(limit, now);
    if (client.rateLimiter.take(now) === "abuse") this.#closeForAbuse(client);
  }

  /**
   * Charges `deliveries` to the client's work budget (see `RateLimitOptions.deliveriesPerSecond`).
   *
   * @returns false when the budget is spent: the work must not be done, and the message that asked
   *   for it counts as dropped (sustained, the client is closed with 1008)
   */
  charge(client: Connection, deliveries: number): boolean {
    const limit = this.#limit;
    if (!limit || deliveries <= 0) return true;
    const now = Date.now();
    client.rateLimiter ??= new RateLimiter(limit, now);
    const decision = client.rateLimiter.charge(deliveries, now);
    if (decision === "allow") return true;
    if (decision === "abuse") this.#closeForAbuse(client);
    return false;
  }

  #closeForAbuse(client: Connection): void {
    this.#logger.warn({ clientId: client.id }, "rate limit abused: closing 1008");
    client.close(CloseCode.PolicyViolation, "rate limit exceeded", "rate_limited");
    // A client that floods past its limit would keep the server parsing until the close times out:
    // read nothing more from it. Its close frame is already on its way; the socket is destroyed when
    // the closing handshake times out.
    client.stopReading();
  }
}
