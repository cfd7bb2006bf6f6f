/**
 * The bytes a node publishes to Redis: one header line, then the message's JSON exactly as the
 * publishing node serialised it. The receiving node never re-serialises the message: it frames the
 * JSON text as it arrived.
 *
 * @module
 */
import type { ClusterBroadcast } from "../adapter.js";

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
