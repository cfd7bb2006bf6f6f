/**
 * The shapes the server API speaks in, shared by the server's methods, the HTTP routes and the typed
 * backend client, so the three cannot disagree (SPEC §11).
 *
 * @module
 */

/** The answer to a publish: `offset` once the room's namespace keeps history (section 9), else empty. */
export interface PublishResult {
  /** The publication's position in the room's history; absent when the room keeps none. */
  offset?: number;
}

/** One live node, as {@link ClusterInfo} lists it. */
export interface ClusterNodeInfo {
  /** The node's id (random per process start). */
  id: string;
  /** Connections the node holds (this node: now; others: at their last report). */
  connections: number;
}

/** The answer of `GET /api/info` and `ConduitServer.info()`. */
export interface ClusterInfo {
  /** Connections on every live node together. */
  connections: number;
  /** Every live node. */
  nodes: ClusterNodeInfo[];
}

/** How `disconnectUser`/`disconnectClient` close the connections. */
export interface DisconnectOptions {
  /**
   * The close code: 1000, or 3000 to 4999.
   * @default 4003
   */
  code?: number;
  /**
   * The close reason, at most {@link MAX_CLOSE_REASON_BYTES} bytes of UTF-8.
   * @default "disconnected"
   */
  reason?: string;
}

/** One member of a room, as `GET /api/rooms/ROOM/presence` lists it. */
export interface PresenceMember {
  /** The member's client id. */
  client_id: string;
  /** The member's user id, null when anonymous. */
  user_id: string | null;
}

/** The answer of `GET /api/rooms/ROOM/presence`. */
export interface RoomPresence {
  /** The room. */
  room: string;
  /** How many members it has on every node. */
  count: number;
  /** Its members on every node. */
  members: PresenceMember[];
}

/** The longest close reason a WebSocket close frame carries (RFC 6455 §5.5: 125 bytes less the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/** The close code of a disconnect when none is given. */
export const DEFAULT_DISCONNECT_CODE = 4003;

/** The close reason of a disconnect when none is given. */
export const DEFAULT_DISCONNECT_REASON = "disconnected";

/**
 * Why a disconnect's code or reason cannot be sent, or undefined when both can. A close frame carries
 * 1000 or an application code (3000–4999); other codes are the protocol's own and `ws` refuses them.
 */
export function disconnectOptionsProblem(code: unknown, reason: unknown): string | undefined {
  if (code !== undefined && (typeof code !== "number" || !Number.isInteger(code) || (code !== 1000 && (code < 3000 || code > 4999)))) {
    return 'field "code" must be 1000 or a whole number from 3000 to 4999';
  }
  if (reason !== undefined && (typeof reason !== "string" || Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES)) {
    return `field "reason" must be a string of at most ${MAX_CLOSE_REASON_BYTES} bytes`;
  }
  return undefined;
}
