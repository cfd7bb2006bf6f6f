/**
 * The floor of a room broadcast on node: a `ws` server whose broadcast loop does nothing per member
 * but hand one shared frame to the member's libuv handle (`_handle.writeBuffer` with one reused
 * `WriteWrap`, the call `net.Socket` itself makes). No readiness check, no byte accounting, no
 * queue, no metrics: what is left per member is node's C++ write call and the kernel's `write`,
 * which every server that writes once per member pays. `npm run bench:paired -- fanout … --floor`
 * measures it against the plain ws hub in place of conduit-ws, so a reader sees how far below the
 * hub any node server can go with one write per member on this machine, and how close conduit-ws is
 * to that.
 *
 * Not a server to copy: it ignores a write the kernel does not take at once (the benchmark's
 * receivers keep up; a real server must count those bytes, as conduit-ws does), writes to sockets
 * that are closing, never removes a member, sends no heartbeat (the hub and conduit-ws ping every
 * member every 30 s, about 2 % of the 10,000-member load's writes) and speaks only what the fan-out
 * load needs (`join_room`, `broadcast`).
 *
 * @module
 */
import * as wsModule from "ws";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { announceReady, HOST } from "./child.js";

/** The part of `ws`'s `Sender` used here; `@types/ws` does not declare it. */
interface SenderStatic {
  frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[];
}
/** What node's `stream_wrap` binding offers (see src/hub/direct-write.ts). */
interface WriteRequest {
  oncomplete: (status: number) => void;
}
interface StreamHandle {
  writeBuffer(request: WriteRequest, data: Buffer): number;
}

const { Sender } = wsModule as unknown as { Sender: SenderStatic };
const { WriteWrap } = (process as unknown as { binding(name: string): { WriteWrap: new () => WriteRequest } }).binding("stream_wrap");

/** One request object for every write: libuv keeps it only for a write that goes async, ignored here. */
const request = new WriteWrap();
request.oncomplete = () => {};

/** Each member's libuv handle, taken once at the join. */
const rooms = new Map<string, StreamHandle[]>();

function handleOf(ws: WebSocket): StreamHandle {
  return (ws as unknown as { _socket: { _handle: StreamHandle } })._socket._handle;
}

function onMessage(ws: WebSocket, raw: RawData): void {
  const message = JSON.parse(raw.toString()) as { type?: string; data?: { room?: string; type?: string; payload?: unknown } };
  const data = message.data ?? {};
  if (message.type === "join_room" && typeof data.room === "string") {
    let members = rooms.get(data.room);
    if (members === undefined) rooms.set(data.room, (members = []));
    members.push(handleOf(ws));
    ws.send(JSON.stringify({ type: "room_joined", data: { room: data.room } }));
  } else if (message.type === "broadcast" && typeof data.room === "string") {
    const parts = Sender.frame(Buffer.from(JSON.stringify({ type: data.type, data: data.payload })), {
      fin: true,
      rsv1: false,
      opcode: 0x1,
      mask: false,
      readOnly: false,
    });
    const frame = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const members = rooms.get(data.room) ?? [];
    for (let i = 0; i < members.length; i++) members[i]!.writeBuffer(request, frame);
  }
}

const wss = new WebSocketServer({ host: HOST, port: 0, path: "/ws" });
wss.on("connection", (ws) => {
  ws.on("message", (raw) => onMessage(ws, raw));
  ws.on("error", () => ws.terminate());
});
wss.on("listening", () => {
  const address = wss.address();
  if (address === null || typeof address === "string") throw new Error("expected a TCP address");
  announceReady(address.port);
});
