/**
 * Short helpers for tests of the client SDK (Node entry): a client closed when the test ends, and
 * promises for its next state change or message, so a test awaits events instead of sleeping.
 */
import type { TestContext } from "node:test";
import { type ClientOptions, ConduitClient, type ConnectionState, type StateChange } from "../../src/client/node.js";

/** Fast retries so that a reconnect takes milliseconds, not seconds. */
export const fastRetry = { initialDelay: 20, maxDelay: 200 };

/** A client that is closed when the test ends. */
export function sdkClient<E extends object = Record<string, unknown>>(
  t: TestContext,
  url: string,
  options: ClientOptions = {},
): ConduitClient<E> {
  const c = new ConduitClient<E>(url, { reconnect: fastRetry, ...options });
  t.after(() => c.close());
  return c;
}

/** Resolves with the next state change matching `match`; rejects after `timeoutMs`. */
export function nextState(
  c: ConduitClient<object>,
  match: ConnectionState | ((change: StateChange) => boolean),
  timeoutMs = 10_000,
): Promise<StateChange> {
  const predicate = typeof match === "string" ? (change: StateChange) => change.state === match : match;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no state change matching ${String(match)} within ${timeoutMs} ms (state: ${c.state})`));
    }, timeoutMs);
    const stop = c.onState((change) => {
      if (!predicate(change)) return;
      clearTimeout(timer);
      stop();
      resolve(change);
    });
  });
}

/** Resolves with the data of the next `type` message the client receives. */
export function nextMessage<T = unknown>(c: ConduitClient<object>, type: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const handler = (data: unknown): void => {
      clearTimeout(timer);
      resolve(data as T);
    };
    const timer = setTimeout(() => {
      c.off(type as never, handler);
      reject(new Error(`no "${type}" message within ${timeoutMs} ms`));
    }, timeoutMs);
    c.once(type as never, handler);
  });
}

/** Every state change of `c` from now on, in order. */
export function recordStates(c: ConduitClient<object>): StateChange[] {
  const changes: StateChange[] = [];
  c.onState((change) => changes.push(change));
  return changes;
}
