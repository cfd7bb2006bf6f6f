/**
 * The bytes a node publishes to Redis: one header line, then the message's JSON exactly as the
 * publishing node serialised it. The receiving node never re-serialises the message: it frames the
 * JSON text as it arrived.
 *
 * @module
 */
import type { ClusterBroadcast, DisconnectOrder } from "../adapter.js";

/** A broadcast as it travels between nodes, with the publishing node's id. */
export interface Envelope {
  /** The node that published it (a node ignores its own publications). */
  nodeId: string;
  /** What to deliver. */
  broadcast: ClusterBroadcast;
}

/** A direct message to one client on whichever node holds it. */
export interface DirectEnvelope {
  /** The node that published it. */
  nodeId: string;
  /** The addressee. */
  clientId: string;
  /** The message type, for metrics. */
  type: string;
  /** The serialised message. */
  json: string;
}

type BroadcastHeader = [version: 1, nodeId: string, room: string | null, except: string | null, type: string, droppable: 0 | 1];
type DirectHeader = [version: 1, nodeId: string, clientId: string, type: string];

// JSON.stringify never emits a raw newline, so the first "\n" always ends the header.
function split(payload: string): [header: unknown, json: string] | undefined {
  const newline = payload.indexOf("\n");
  if (newline === -1) return undefined;
  try {
    return [JSON.parse(payload.slice(0, newline)), payload.slice(newline + 1)];
  } catch {
    return undefined;
  }
}

/** Encodes a broadcast for publishing. */
export function encodeBroadcast(nodeId: string, broadcast: ClusterBroadcast): string {
  const header: BroadcastHeader = [
    1,
    nodeId,
    broadcast.room ?? null,
    broadcast.except ?? null,
    broadcast.type,
    broadcast.droppable ? 1 : 0,
  ];
  return `${JSON.stringify(header)}\n${broadcast.json}`;
}

/** Decodes a published broadcast; undefined for anything malformed (never throws). */
export function decodeBroadcast(payload: string): Envelope | undefined {
  const parts = split(payload);
  if (parts === undefined) return undefined;
  const [header, json] = parts;
  if (!Array.isArray(header) || header.length !== 6 || header[0] !== 1) return undefined;
  const [, nodeId, room, except, type, droppable] = header as BroadcastHeader;
  if (typeof nodeId !== "string" || typeof type !== "string") return undefined;
  return {
    nodeId,
    broadcast: {
      room: typeof room === "string" ? room : undefined,
      except: typeof except === "string" ? except : undefined,
      type,
      json,
      droppable: droppable === 1,
    },
  };
}

/** Encodes a direct message for publishing. */
export function encodeDirect(nodeId: string, clientId: string, type: string, json: string): string {
  const header: DirectHeader = [1, nodeId, clientId, type];
  return `${JSON.stringify(header)}\n${json}`;
}

/** Decodes a direct message; undefined for anything malformed (never throws). */
export function decodeDirect(payload: string): DirectEnvelope | undefined {
  const parts = split(payload);
  if (parts === undefined) return undefined;
  const [header, json] = parts;
  if (!Array.isArray(header) || header.length !== 4 || header[0] !== 1) return undefined;
  const [, nodeId, clientId, type] = header as DirectHeader;
  if (typeof nodeId !== "string" || typeof clientId !== "string" || typeof type !== "string") return undefined;
  return { nodeId, clientId, type, json };
}

/** An order that travels on the control channel: a message for a user, or a disconnect. */
export type ControlEnvelope =
  | { kind: "user"; nodeId: string; userId: string; type: string; json: string }
  | { kind: "disconnect"; nodeId: string; order: DisconnectOrder };

type UserHeader = [version: 1, nodeId: string, kind: "user", userId: string, type: string];
type DisconnectHeader = [
  version: 1,
  nodeId: string,
  kind: "disconnect",
  target: "user" | "client",
  id: string,
  code: number,
  reason: string,
];

/** Encodes a message for every connection of a user. */
export function encodeUserMessage(nodeId: string, userId: string, type: string, json: string): string {
  const header: UserHeader = [1, nodeId, "user", userId, type];
  return `${JSON.stringify(header)}\n${json}`;
}

/** Encodes an order to close a user's or a client's connections (no body after the header). */
export function encodeDisconnect(nodeId: string, order: DisconnectOrder): string {
  const target = "userId" in order.target ? (["user", order.target.userId] as const) : (["client", order.target.clientId] as const);
  const header: DisconnectHeader = [1, nodeId, "disconnect", target[0], target[1], order.code, order.reason];
  return `${JSON.stringify(header)}\n`;
}

/** Decodes a control message; undefined for anything malformed (never throws). */
export function decodeControl(payload: string): ControlEnvelope | undefined {
  const parts = split(payload);
  if (parts === undefined) return undefined;
  const [header, json] = parts;
  if (!Array.isArray(header) || header[0] !== 1 || typeof header[1] !== "string") return undefined;
  if (header.length === 5 && header[2] === "user") {
    const [, nodeId, , userId, type] = header as UserHeader;
    if (typeof userId !== "string" || typeof type !== "string") return undefined;
    return { kind: "user", nodeId, userId, type, json };
  }
  if (header.length === 7 && header[2] === "disconnect") {
    const [, nodeId, , target, id, code, reason] = header as DisconnectHeader;
    if (typeof id !== "string" || typeof code !== "number" || typeof reason !== "string") return undefined;
    if (target !== "user" && target !== "client") return undefined;
    return { kind: "disconnect", nodeId, order: { target: target === "user" ? { userId: id } : { clientId: id }, code, reason } };
  }
  return undefined;
}
