/**
 * The copy of a positioned publication, as members receive it live and in a replay:
 * `{"type":"T","data":P,"room":"R","offset":17}` (without `data` when the publication has none). One
 * builder for every path, so a replayed copy is byte for byte the live one; the text around the
 * offset is split out because on Redis the offset is filled in by the store's script.
 *
 * @module
 */
import type { RoomName } from "../types.js";
import type { PublicationInput, RelayMessage } from "./store.js";

/** The copy's text before and after its offset. */
export function copySegments(room: RoomName, publication: PublicationInput): [before: string, after: string] {
  const data = publication.json === undefined ? "" : `,"data":${publication.json}`;
  return [`{"type":${JSON.stringify(publication.type)}${data},"room":${JSON.stringify(room)},"offset":`, "}"];
}

/** The copy of a publication at `offset`. */
export function copyJson(room: RoomName, publication: PublicationInput, offset: number): string {
  const [before, after] = copySegments(room, publication);
  return `${before}${offset}${after}`;
}

/**
 * A relay that carries the copy on `channel` behind a header of the adapter's (which may hold the
 * epoch and the offset itself, for the receiving node's cursors).
 *
 * @param header - the adapter's header: literal segments around its own slots
 */
export function copyRelay(
  channel: string,
  room: RoomName,
  publication: PublicationInput,
  header: Pick<RelayMessage, "segments" | "slots"> = { segments: [""], slots: [] },
): RelayMessage {
  const [before, after] = copySegments(room, publication);
  const segments = [...header.segments];
  segments[segments.length - 1] += before;
  return { channel, segments: [...segments, after], slots: [...header.slots, "offset"] };
}
