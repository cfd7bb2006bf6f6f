/**
 * A test client over a real WebSocket: queues every message it receives so a test can await the
 * next one (or the next of a type) instead of sleeping.
 */
import { once } from "node:events";
import WebSocket from "ws";

/** A message as the server sends it. */
export interface WireMessage {
  type: string;
  data?: any;
  id?: string;
}

/** How a connection ended. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** A connected test client. */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: WireMessage[] = [];
  readonly closed: Promise<CloseInfo>;
  #waiters: Array<{ match: (m: WireMessage) => boolean; resolve: (m: WireMessage) => void }> = [];
  #cursor = 0;

  constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on("message", (raw, isBinary) => {
      const message = isBinary ? { type: "<binary>", data: raw } : (JSON.parse(raw.toString()) as WireMessage);
      this.received.push(message);
      this.#wake();
    });
  }

  #wake(): void {
    for (let i = 0; i < this.#waiters.length; i++) {
      const waiter = this.#waiters[i]!;
      const index = this.received.findIndex((m, k) => k >= this.#cursor && waiter.match(m));
      if (index !== -1) {
        const [message] = this.received.splice(index, 1);
        this.#waiters.splice(i, 1);
        i--;
        waiter.resolve(message!);
      }
    }
  }

  /** Sends an object as JSON (or a raw string as is). */
  send(message: object | string): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /**
   * Resolves with the next received message matching `match` (by type when a string), consuming it.
   * Rejects after `timeoutMs` so that a missing message fails the test instead of hanging it.
   */
  next(match?: string | ((m: WireMessage) => boolean), timeoutMs = 5000): Promise<WireMessage> {
    const predicate = match === undefined ? () => true : typeof match === "string" ? (m: WireMessage) => m.type === match : match;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no message matching ${String(match)} within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`));
      }, timeoutMs);
      const done = (m: WireMessage): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push({ match: predicate, resolve: done });
      this.#wake();
    });
  }

  /** Sends `{type, data, id}` and resolves with the reply carrying that id. */
  async request(type: string, data?: unknown, id = `req-${Math.random().toString(36).slice(2)}`): Promise<WireMessage> {
    const reply = this.next((m) => m.id === id);
    this.send(data === undefined ? { type, id } : { type, data, id });
    return reply;
  }

  /** Closes and waits for the close to complete. */
  async close(): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

/** Opens a connection and resolves once it is open; rejects with the HTTP status on refusal. */
export async function connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
  const ws = new WebSocket(url, options);
  const client = new TestClient(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => {
      reject(Object.assign(new Error(`handshake refused with HTTP ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once("error", reject);
  });
  return client;
}

/** Resolves with the HTTP status of a refused handshake (throws if the upgrade succeeds). */
export async function refusedStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  try {
    const client = await connect(url, options);
    await client.close();
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status !== undefined) return status;
    throw error;
  }
  throw new Error("handshake was accepted, expected a refusal");
}

export { once };
