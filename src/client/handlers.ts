/**
 * The handlers of the messages the server sends unasked, by type: `on`, `once`, `off` and dispatch.
 *
 * @module
 */
import type { ClientMessage } from "./types.js";

/** A handler as stored: the types are checked at `on()`, not here. */
export type AnyHandler = (data: unknown, message: ClientMessage) => void;

/** Calls a user callback; its exception is rethrown later so that it neither stops us nor is lost. */
export function guarded(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    setTimeout(() => {
      throw error;
    }, 0);
  }
}

/** Handlers by message type. A handler added twice for one type is called once per message. */
export class HandlerRegistry {
  /** type → handler → whether it is removed after its first call. */
  readonly #byType = new Map<string, Map<AnyHandler, boolean>>();

  /** Adds `handler` for `type`; with `once`, it is removed before its first call. */
  add(type: string, handler: AnyHandler, once: boolean): void {
    let handlers = this.#byType.get(type);
    if (handlers === undefined) {
      handlers = new Map();
      this.#byType.set(type, handlers);
    }
    // An on() handler stays one even when once() adds it again.
    if (!handlers.has(handler) || !once) handlers.set(handler, once);
  }

  /** Removes `handler` from `type`, however it was added. */
  remove(type: string, handler: AnyHandler): void {
    const handlers = this.#byType.get(type);
    if (handlers?.delete(handler) && handlers.size === 0) this.#byType.delete(type);
  }

  /** Calls every handler of `message.type`; a handler that throws does not stop the others. */
  dispatch(message: ClientMessage): void {
    const handlers = this.#byType.get(message.type);
    if (handlers === undefined) return;
    for (const [handler, once] of [...handlers]) {
      if (once) this.remove(message.type, handler);
      guarded(() => handler(message.data, message));
    }
  }
}
