/**
 * Keeping a connection's token fresh: knowing when it expires, and asking for a new one in time.
 *
 * The expiry comes from the server when it says (`refreshed`, `token_expiring`), else from the `exp`
 * claim of a JWT. The claim is read without checking the signature: the SDK only uses it to decide
 * when to ask its token function again, and the server checks every token it is sent.
 *
 * @module
 */

/** setTimeout's largest delay; a longer one fires at once, so far expiries are waited for in steps. */
const MAX_TIMER = 2 ** 31 - 1;
/**
 * The shortest wait before a scheduled refresh. A client whose clock runs ahead of the server's sees
 * every token as expired already; without a floor it would refresh in a tight loop.
 */
const MIN_WAIT = 1000;

/** The `exp` claim of a JWT in ms since the epoch; undefined when `token` is not a JWT with one. */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const base64 = parts[1]!.replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "="));
    // JSON is UTF-8, atob yields one char per byte; `exp` is a number, so no non-ASCII text matters.
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** An ISO 8601 time in ms since the epoch; undefined when it is not a string the Date parser reads. */
export function parseExpiry(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** What a {@link TokenRefresher} needs from the client that owns it. */
export interface RefreshHost {
  /** Calls the user's token function. */
  fetchToken(): Promise<string | null | undefined>;
  /**
   * Sends `{"type":"refresh","data":{"token"}}` on the current connection and resolves with the
   * reply's `expires_at`; rejects with the error reply or a failure.
   */
  sendRefresh(token: string): Promise<unknown>;
  /** Reports a failed refresh to the application (an `error` event). */
  failed(code: string, message: string): void;
}

/**
 * The refresh timer of one client. `start()` with each new connection, `stop()` when it ends: a
 * refresh whose connection ended meanwhile is forgotten.
 */
export class TokenRefresher {
  readonly #host: RefreshHost;
  readonly #before: number;
  /** When the current connection's token expires (ms since the epoch); undefined: unknown or never. */
  #expiresAt: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by start() and stop(), so that a refresh of an earlier connection does nothing. */
  #generation = 0;
  #inFlight = false;

  /**
   * @param host - the client's side
   * @param before - ms before the expiry to refresh
   */
  constructor(host: RefreshHost, before: number) {
    this.#host = host;
    this.#before = before;
  }

  /** When the token expires as far as the SDK knows (ms since the epoch), or undefined. */
  get expiresAt(): number | undefined {
    return this.#expiresAt;
  }

  /** A new connection was opened with `token`: schedule its refresh if it is a JWT with `exp`. */
  start(token: string | null | undefined): void {
    this.stop();
    this.#expiresAt = token ? jwtExpiry(token) : undefined;
    this.#schedule();
  }

  /** The connection ended: no refresh until the next one starts. */
  stop(): void {
    this.#generation++;
    this.#inFlight = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The server says the token expires at `expiresAt` (ISO 8601): refresh now. */
  expiring(expiresAt: unknown): void {
    this.#expiresAt = parseExpiry(expiresAt) ?? this.#expiresAt;
    void this.refresh();
  }

  /** Fetches a new token and sends it; one refresh at a time. */
  async refresh(): Promise<void> {
    if (this.#inFlight) return;
    this.#inFlight = true;
    clearTimeout(this.#timer);
    const generation = this.#generation;
    let token: string | null | undefined;
    try {
      token = await this.#host.fetchToken();
      if (generation !== this.#generation) return;
      if (!token) throw new Error("the token function returned no token");
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#inFlight = false;
      this.#host.failed("refresh_failed", `token refresh: ${(error as Error).message}`);
      return;
    }
    let expiresAt: unknown;
    try {
      expiresAt = await this.#host.sendRefresh(token);
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#inFlight = false;
      // No retry: the server closes with 4001 at expiry, and the reconnect asks for a new token.
      const { code, message } = error as { code?: string; message?: string };
      this.#host.failed(code ?? "refresh_failed", `token refresh: ${message ?? String(error)}`);
      return;
    }
    if (generation !== this.#generation) return;
    this.#inFlight = false;
    // null: the server says the new token does not expire. Absent or unreadable: the JWT may say.
    this.#expiresAt = expiresAt === null ? undefined : (parseExpiry(expiresAt) ?? jwtExpiry(token));
    this.#schedule();
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const expiresAt = this.#expiresAt;
    if (expiresAt === undefined) return;
    const left = expiresAt - Date.now();
    // Ahead by `before`, or halfway through what is left when that is later: a token that lives less
    // than twice `before` is renewed once per half-life instead of again at once.
    const due = Date.now() + Math.max(MIN_WAIT, left - this.#before, left / 2);
    const generation = this.#generation;
    const wait = (): void => {
      const now = Date.now();
      if (now < due) {
        this.#timer = setTimeout(wait, Math.min(due - now, MAX_TIMER));
        return;
      }
      if (generation === this.#generation) void this.refresh();
    };
    wait();
  }
}
