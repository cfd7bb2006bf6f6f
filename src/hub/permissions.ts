/**
 * Who may do what in which room, and for how long: the namespace rules, the `canJoin` hook, and the
 * expiry of each connection's token with what a refresh changes (docs/PERMISSIONS.md). Owned by the
 * hub, which asks it before a client's own join, broadcast or presence request.
 *
 * @module
 */
import { CloseCode } from "../errors.js";
import type { Logger } from "../logger.js";
import type { NamespacesConfig } from "../namespaces/config.js";
import { joinRefusal, NamespaceTable, type NamespaceRules } from "../namespaces/rules.js";
import type { ServerOptions } from "../options.js";
import type { RoomName } from "../types.js";
import type { Identity } from "../upgrade/tokens.js";
import type { Connection } from "./client.js";
import { ExpiryWatch } from "./expiry.js";

/** How long before its token expires a connection is sent `token_expiring`. */
const TOKEN_WARNING_MS = 10_000;

/** The rules, the hook and the expiry watch; one per hub. */
export class Permissions {
  readonly #namespaces: NamespaceTable;
  readonly #canJoin: ServerOptions["canJoin"];
  readonly #logger: Logger;
  /** Takes a client out of a room (the hub's leave, with its presence events). */
  readonly #leave: (client: Connection, room: RoomName) => void;
  readonly #expiry = new ExpiryWatch<Connection>(
    TOKEN_WARNING_MS,
    (client) => {
      if (client.expiresAt !== undefined) client.send("token_expiring", { expires_at: new Date(client.expiresAt).toISOString() });
    },
    (client) => client.close(CloseCode.TokenExpired, "token_expired", "token_expired"),
  );

  /**
   * @param namespaces - the checked `namespaces` option
   * @param canJoin - the `canJoin` option
   * @param leave - takes a client out of a room, as a leave does
   */
  constructor(
    namespaces: NamespacesConfig | undefined,
    canJoin: ServerOptions["canJoin"],
    logger: Logger,
    leave: (client: Connection, room: RoomName) => void,
  ) {
    this.#namespaces = new NamespaceTable(namespaces);
    this.#canJoin = canJoin;
    this.#logger = logger;
    this.#leave = leave;
  }

  /** The rules of `room`'s namespace; undefined when a configuration does not list it. */
  rulesFor(room: RoomName): NamespaceRules | undefined {
    return this.#namespaces.rulesFor(room);
  }

  /**
   * Why a client's own `join_room` may not join `room`, or undefined when it may: the namespace
   * rules, then the `canJoin` hook. The server's own `client.joinRoom` does not ask. Answered at once
   * unless a `canJoin` hook has to be asked, so a join without one stays synchronous.
   */
  joinRefusal(client: Connection, room: RoomName): string | undefined | Promise<string | undefined> {
    const rules = this.#namespaces.rulesFor(room);
    if (rules === undefined) return `room ${JSON.stringify(room)} is in a namespace this server does not serve`;
    const refusal = joinRefusal(rules, client, room);
    if (refusal !== undefined || this.#canJoin === undefined) return refusal;
    return this.#askCanJoin(this.#canJoin, client, room);
  }

  async #askCanJoin(canJoin: NonNullable<ServerOptions["canJoin"]>, client: Connection, room: RoomName): Promise<string | undefined> {
    let allowed: boolean;
    try {
      allowed = await canJoin(client, room);
    } catch (error) {
      this.#logger.warn({ clientId: client.id, room, err: error }, "canJoin threw: join refused");
      allowed = false;
    }
    return allowed === true ? undefined : `joining room ${JSON.stringify(room)} was refused`;
  }

  /** A client entered the hub: watch its token's expiry, if it has one. */
  admitted(client: Connection): void {
    this.#expiry.watch(client);
  }

  /** A client left the hub. */
  departed(client: Connection): void {
    this.#expiry.unwatch(client);
  }

  /**
   * A client refreshed its token (already checked: same user): its expiry and room grant become the
   * new token's, and it leaves, with `room_left` and reason `forbidden`, every room of a `granted`
   * namespace the new grant no longer covers.
   */
  refresh(client: Connection, identity: Identity): void {
    this.#expiry.unwatch(client);
    client.expiresAt = identity.expiresAt;
    client.grant = identity.grant;
    this.#expiry.watch(client);
    for (const room of [...client.rooms]) {
      if (this.#namespaces.rulesFor(room)?.join !== "granted" || identity.grant?.allows(room)) continue;
      this.#leave(client, room);
      client.send("room_left", { room, reason: "forbidden" });
    }
  }

  /** Stops watching token expiries (shutdown). */
  stop(): void {
    this.#expiry.stop();
  }
}
