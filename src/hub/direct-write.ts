/**
 * A frame written straight to the socket's libuv handle, the way `net.Socket` itself writes, but
 * without node's `Writable` bookkeeping around it. On a plain TCP socket with nothing waiting in
 * node's write buffer, `socket.write(frame)` costs, besides the `write` system call: the `Writable`
 * state machine, a new `WriteWrap` request object, and one `process.nextTick` per socket and turn
 * to run the write's (empty) callback. For a broadcast to 1,000 members that is 1,000 request
 * objects and 1,000 ticks; here it is one request object, reused for every write the kernel takes
 * at once, and no tick.
 *
 * The handle is reached through node internals, each looked up once and checked: the socket's
 * `_handle` (what `net.Socket` writes through) and `_writableState` (what `writableLength` and
 * `writable` read), once per socket by {@link directTarget}, and the `stream_wrap` binding's
 * `WriteWrap` class and shared write-result array (what node's `lib/internal/stream_base_commons.js`
 * uses), once per process. Where they are missing (another runtime, a future node, a TLS socket, a
 * socket not attached) {@link directTarget} finds nothing and the caller writes with
 * `socket.write`; {@link writeDirect} returns `false` for anything node already holds in its write
 * buffer, so frames never overtake each other.
 *
 * A write the kernel cannot take at once (a full socket buffer: a slow reader) stays queued in libuv
 * behind the frame; its bytes are reported to the {@link AsyncWriteOwner} until libuv has written
 * them, as node counts its own in `writableLength`, so `maxBufferedBytes` still sees them.
 *
 * @module
 */
import type { Writable } from "node:stream";
import { getSystemErrorName } from "node:util";

/** Whoever is told about writes that the kernel did not take at once. */
export interface AsyncWriteOwner {
  /** `bytes` of a frame are queued in libuv, not yet handed to the kernel. */
  asyncWriteStarted(bytes: number): void;
  /** The queued write of `bytes` has finished (or failed, or was cancelled because the socket closed). */
  asyncWriteDone(bytes: number): void;
}

/** libuv's stream handle as node exposes it to its own `net.Socket` (`TCPWrap`, `PipeWrap`). */
export interface StreamHandle {
  writeBuffer(request: WriteRequest, data: Uint8Array): number;
}

/** A `WriteWrap`, with the fields this module keeps on it while a write is queued in libuv. */
interface WriteRequest {
  /** Called by node when a queued write has finished; `status` is a negative errno on failure. */
  oncomplete: ((this: WriteRequest, status: number) => void) | undefined;
  /** Keeps the frame alive while libuv holds a pointer to it. */
  buffer: Buffer | undefined;
  bytes: number;
  owner: AsyncWriteOwner | undefined;
  socket: Writable | undefined;
}

/** The parts of node's `stream_wrap` binding that `net.Socket` writes with. */
interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  /** Written by every `writeBuffer` call: bytes of the write, and whether it went asynchronous. */
  streamBaseState: Int32Array;
  kBytesWritten: number;
  kLastWriteWasAsync: number;
}

function loadBinding(): StreamWrapBinding | undefined {
  try {
    const load = (process as unknown as { binding?: (name: string) => unknown }).binding;
    if (typeof load !== "function") return undefined;
    const binding = load.call(process, "stream_wrap") as Partial<StreamWrapBinding>;
    if (
      typeof binding.WriteWrap !== "function" ||
      !(binding.streamBaseState instanceof Int32Array) ||
      typeof binding.kBytesWritten !== "number" ||
      typeof binding.kLastWriteWasAsync !== "number"
    ) {
      return undefined;
    }
    return binding as StreamWrapBinding;
  } catch {
    return undefined;
  }
}

const binding = loadBinding();
const writeState = binding?.streamBaseState;
const BYTES_WRITTEN = binding?.kBytesWritten ?? 0;
const LAST_WRITE_WAS_ASYNC = binding?.kLastWriteWasAsync ?? 0;
/**
 * A request object that no write holds: libuv takes a request only when the kernel does not take the
 * whole frame at once, so one object serves every write in a row that completes in the call.
 */
let spare: WriteRequest | undefined;

/** Whether this node offers what direct writes need. */
export const directWritesSupported = binding !== undefined;

/**
 * The two objects of a socket that a direct write reads, looked up once per socket: walking from
 * the socket to them on every frame touched the `net.Socket` object as well, one more cache miss
 * per member of a room at 10,000 members.
 */
export interface DirectTarget {
  /**
   * node's `Writable` state of the socket: `length` is what `socket.writableLength` returns (bytes
   * node holds unsent), and the flags are those `socket.writable` combines. It lives as long as the
   * socket.
   */
  readonly state: WritableStateView;
  /** libuv's handle; node closes it when the socket is destroyed, which `state.destroyed` says. */
  readonly handle: StreamHandle;
}

/** The fields of node's `WritableState` read here (getters over a bit field since node 20.10). */
export interface WritableStateView {
  readonly length: number;
  readonly writable?: boolean;
  readonly ending: boolean;
  readonly ended: boolean;
  readonly destroyed: boolean;
  readonly errored: unknown;
}

/**
 * `socket`'s {@link DirectTarget} when its frames can be written directly: a plain (not TLS) socket
 * with node's handle attached and node's `WritableState` as expected; undefined otherwise.
 */
export function directTarget(socket: Writable): DirectTarget | undefined {
  if (binding === undefined || (socket as Partial<{ encrypted: boolean }>).encrypted === true) return undefined;
  const handle = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
  const state = (socket as unknown as { _writableState?: Partial<WritableStateView> | null })._writableState;
  if (handle == null || typeof handle.writeBuffer !== "function") return undefined;
  if (state == null || typeof state.length !== "number" || typeof state.destroyed !== "boolean" || typeof state.ended !== "boolean") return undefined;
  return { state: state as WritableStateView, handle: handle as StreamHandle };
}

/**
 * Whether `socket.writable` would say true, read from the state {@link directTarget} found: not
 * ended, ending, destroyed or errored (as node's getter).
 */
export function isWritable(state: WritableStateView): boolean {
  return state.writable !== false && !state.ending && !state.ended && !state.destroyed && state.errored == null;
}

/**
 * Writes `frame` to `handle` when nothing waits in node's write buffer before it and the socket is
 * not destroyed; `state` and `handle` are the {@link DirectTarget} found for `socket`.
 *
 * @returns false when the caller must use `socket.write` instead (node holds unsent bytes, or the
 *   socket is destroyed); true when the frame was handed to libuv, or the write failed and the
 *   socket was destroyed with the error, as `socket.write` would have done
 */
export function writeDirect(state: WritableStateView, handle: StreamHandle, socket: Writable, frame: Buffer, owner: AsyncWriteOwner): boolean {
  if (state.length !== 0 || state.destroyed) return false;
  const request = spare ?? newRequest();
  spare = undefined;
  const error = handle.writeBuffer(request, frame);
  if (error !== 0) {
    // libuv may have taken the request before failing: never reuse it.
    socket.destroy(writeError(error));
    return true;
  }
  if (writeState![LAST_WRITE_WAS_ASYNC] === 0) {
    spare = request;
    return true;
  }
  const bytes = writeState![BYTES_WRITTEN]!;
  request.buffer = frame;
  request.bytes = bytes;
  request.owner = owner;
  request.socket = socket;
  owner.asyncWriteStarted(bytes);
  return true;
}

function newRequest(): WriteRequest {
  const request = new binding!.WriteWrap();
  request.oncomplete = onQueuedWriteComplete;
  request.buffer = undefined;
  request.bytes = 0;
  request.owner = undefined;
  request.socket = undefined;
  return request;
}

/** Node calls this on the request when libuv has finished a write it queued. */
function onQueuedWriteComplete(this: WriteRequest, status: number): void {
  const { owner, socket, bytes } = this;
  this.buffer = undefined;
  this.owner = undefined;
  this.socket = undefined;
  owner?.asyncWriteDone(bytes);
  // A cancelled write (the socket was destroyed meanwhile) is no news; any other failure is, as it
  // is for node's own writes.
  if (status < 0 && socket !== undefined && !socket.destroyed) socket.destroy(writeError(status));
}

/** The error `socket.write` reports for a failed write (`code`, `errno`, `syscall` as node sets them). */
function writeError(errno: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  const error: NodeJS.ErrnoException = new Error(`write ${code}`);
  error.errno = errno;
  error.code = code;
  error.syscall = "write";
  return error;
}
