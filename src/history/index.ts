/**
 * History and recovery (SPEC §9): the {@link HistoryStore} seam, the single-process default and the
 * checks of what clients send. The Redis store lives in `./redis/index.js`, to be exported beside the
 * Redis adapter so that only users of Redis load ioredis.
 *
 * @module
 */
export { RoomCursor } from "./catch-up.js";
export { copyJson, copyRelay, copySegments } from "./copy.js";
export { MemoryHistoryStore, type MemoryHistoryStoreOptions } from "./memory.js";
export {
  type HistoryQuery,
  type HistoryResult,
  type HistoryStore,
  HistoryUnavailableError,
  type Publication,
  type PublicationInput,
  type RelayMessage,
  type Retention,
  roomHashTag,
  type StreamPosition,
} from "./store.js";
export { type Checked, checkLimit, checkSince, isOffset, MAX_EPOCH_LENGTH } from "./validate.js";
