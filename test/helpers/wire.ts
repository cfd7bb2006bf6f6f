/**
 * Helpers for asserting what a connection did NOT receive, and for polling where no event exists.
 */
import type { TestClient, WireMessage } from "./client.js";

let fences = 0;

/**
 * Sends a `ping` with a fresh id and waits for its `pong`. The server answers one connection's
 * messages in order, so once the fence is back every message the server queued for this client
 * before it has arrived: absence can then be asserted without sleeping.
 */
export async function fence(client: TestClient): Promise<void> {
  const id = `fence-${++fences}`;
  await client.request("ping", undefined, id);
}

/** Fences, then removes and returns every message received and not yet consumed. */
export async function drain(client: TestClient): Promise<WireMessage[]> {
  await fence(client);
  return client.received.splice(0);
}

/**
 * Polls `condition` every 10 ms until it holds; rejects after `timeoutMs`. Only for states that no
 * event announces (a server-side counter, say).
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Rejects when `promise` has not settled within `timeoutMs`, so a missing event fails instead of hanging. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
