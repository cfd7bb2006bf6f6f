import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createServer, defaultOptions } from "../src/index.js";
import { resolveOptions } from "../src/options.js";
import { formatGoDuration } from "../src/protocol/duration.js";
import { invalidRoomReason } from "../src/hub/rooms.js";
import { randomClientId } from "../src/hub/client-id.js";
import { parseMessage } from "../src/protocol/message.js";

describe("formatGoDuration: Go's time.Duration.String()", () => {
  it("formats like Go across units", () => {
    // Expected values are what Go prints for the same durations.
    const cases: Array<[number, string]> = [
      [0, "0s"],
      [0.000001, "1ns"],
      [0.00025, "250ns"],
      [0.001, "1µs"],
      [0.0011, "1.1µs"],
      [1, "1ms"],
      [1.5, "1.5ms"],
      [150, "150ms"],
      [999, "999ms"],
      [1000, "1s"],
      [1001, "1.001s"],
      [1500, "1.5s"],
      [59_999, "59.999s"],
      [60_000, "1m0s"],
      [90_500, "1m30.5s"],
      [330_000, "5m30s"],
      [3_600_000, "1h0m0s"],
      [3_661_001, "1h1m1.001s"],
      [360_000_000, "100h0m0s"],
      [-1500, "-1.5s"],
      [-0.5, "-500µs"],
    ];
    for (const [ms, expected] of cases) assert.equal(formatGoDuration(ms), expected, `${ms} ms`);
  });

  it("is exact for fractional inputs that floating point would smear", () => {
    assert.equal(formatGoDuration(0.1 + 0.2), "300µs");
    assert.equal(formatGoDuration(1000.1), "1.0001s");
  });
});

describe("parseMessage: the envelope", () => {
  it("accepts {type}, {type,data}, {type,data,id}", () => {
    const plain = parseMessage('{"type":"ping"}');
    assert.ok(plain.ok);
    assert.equal(plain.message.type, "ping");
    assert.equal(plain.message.data, undefined);
    assert.equal("id" in plain.message, false);

    const full = parseMessage('{"type":"echo","data":{"a":[1,null]},"id":"r1","extra":true}');
    assert.ok(full.ok);
    assert.deepEqual(full.message, { type: "echo", data: { a: [1, null] }, id: "r1" });
  });

  it("refuses bad JSON and non-objects", () => {
    for (const text of ["", "{", "{'type':'x'}", "undefined", '{"type":"x",}']) {
      const result = parseMessage(text);
      assert.equal(result.ok, false, text);
      if (!result.ok) assert.equal(result.code, "invalid_json", text);
    }
    for (const text of ["[]", '[{"type":"x"}]', "null", "1", '"type"', "true"]) {
      const result = parseMessage(text);
      assert.equal(result.ok, false, text);
      if (!result.ok) assert.equal(result.code, "invalid_message", text);
    }
  });

  it("requires a non-empty string type and a string id, and keeps a readable id for the error reply", () => {
    for (const text of ['{"data":1}', '{"type":1}', '{"type":""}', '{"type":null}', '{"type":["x"]}']) {
      const result = parseMessage(text);
      assert.ok(!result.ok, text);
      assert.equal(result.code, "invalid_message", text);
      assert.equal(result.id, undefined);
    }
    const withId = parseMessage('{"id":"r9","data":1}');
    assert.ok(!withId.ok);
    assert.equal(withId.code, "invalid_message");
    assert.equal(withId.id, "r9");
    const badId = parseMessage('{"type":"echo","id":7}');
    assert.ok(!badId.ok);
    assert.equal(badId.code, "invalid_message");
    assert.match(badId.reason, /id/);
  });

  it("strips __proto__, constructor and prototype keys so merging the data cannot pollute prototypes", () => {
    const result = parseMessage(
      '{"type":"x","data":{"a":1,"__proto__":{"polluted":true},"nested":{"constructor":{"prototype":{"polluted":true}}}}}',
    );
    assert.ok(result.ok);
    const data = result.message.data as Record<string, unknown>;
    assert.deepEqual(Object.keys(data).sort(), ["a", "nested"]);
    assert.deepEqual(Object.keys(data.nested as object), []);
    const merged = Object.assign({}, data);
    assert.equal((merged as { polluted?: unknown }).polluted, undefined);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    // The words as values are untouched.
    const values = parseMessage('{"type":"x","data":["__proto__","constructor"]}');
    assert.ok(values.ok);
    assert.deepEqual(values.message.data, ["__proto__", "constructor"]);
  });
});

describe("invalidRoomReason: room name rules", () => {
  it("accepts 1 to 128 characters without control characters", () => {
    for (const room of ["a", "lobby", "room with spaces", "ünïcödé/ß:é#1", "y".repeat(128)]) {
      assert.equal(invalidRoomReason(room), undefined, room);
    }
  });

  it("refuses empty, non-string, longer than 128, or control characters, with a reason", () => {
    for (const room of [
      "",
      "y".repeat(129),
      "a\u0000",
      "line\nbreak",
      "\u001f",
      "del\u007f",
      "c1\u0080",
      "c1\u009f",
      7,
      null,
      undefined,
      {},
    ]) {
      const reason = invalidRoomReason(room);
      assert.equal(typeof reason, "string", JSON.stringify(room));
      assert.ok(reason!.length > 0);
    }
    assert.match(invalidRoomReason("y".repeat(129))!, /128/);
  });
});

describe("resolveOptions: defaults and errors that say how to fix them", () => {
  it("returns the defaults, ignores undefined values, and merges a partial rateLimit", () => {
    const resolved = resolveOptions({ maxPayload: undefined });
    assert.deepEqual(resolved, { ...defaultOptions });
    const limited = resolveOptions({ rateLimit: { messagesPerSecond: 5 } as never });
    // The work budget follows the message rate it was not given with.
    assert.deepEqual(limited.rateLimit, {
      messagesPerSecond: 5,
      burst: 200,
      maxDropped: 200,
      abuseWindowMs: 10_000,
      deliveriesPerSecond: 500,
    });
    assert.equal(resolveOptions({ rateLimit: false }).rateLimit, false);
    assert.equal(resolveOptions({ presenceEventsMaxMembers: 0, shutdownTimeout: 0 }).presenceEventsMaxMembers, 0);
  });

  it("throws a TypeError naming the option and the bad value", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ path: "ws" }, /"path".*"ws"/],
      [{ path: 5 }, /"path"/],
      [{ maxPayload: 0 }, /"maxPayload".*0/],
      [{ maxPayload: -1 }, /"maxPayload"/],
      [{ maxPayload: 1.5 }, /"maxPayload".*1\.5/],
      [{ maxPayload: "65536" }, /"maxPayload"/],
      [{ maxConnections: Number.NaN }, /"maxConnections"/],
      [{ handshakeTimeout: 0 }, /"handshakeTimeout"/],
      [{ handlerTimeout: -5 }, /"handlerTimeout"/],
      [{ maxRoomsPerClient: 0 }, /"maxRoomsPerClient"/],
      [{ maxBufferedBytes: Infinity }, /"maxBufferedBytes"/],
      [{ presenceEventsMaxMembers: -1 }, /"presenceEventsMaxMembers"/],
      [{ heartbeatInterval: 1000, heartbeatTimeout: 500 }, /"heartbeatTimeout".*"heartbeatInterval"/],
      [{ rateLimit: { burst: 0 } }, /rateLimit\.burst/],
      [{ rateLimit: { messagesPerSecond: 0.5 } }, /rateLimit\.messagesPerSecond/],
      [{ allowedOrigins: "https://a.example" }, /"allowedOrigins".*array/],
      [{ heartbeatTimeout: 2 ** 31 }, /"heartbeatTimeout".*2147483647/],
      [{ handlerTimeout: 2 ** 31 }, /"handlerTimeout".*timer limit/],
      [{ maxBufferedBytes: 1000, droppableBufferedBytes: 2000 }, /"droppableBufferedBytes".*"maxBufferedBytes"/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => resolveOptions(options as never),
        (error: unknown) => {
          assert.ok(error instanceof TypeError, JSON.stringify(options));
          assert.match(error.message, message);
          assert.match(error.message, /^conduit-ws: /);
          return true;
        },
      );
    }
  });

  it("createServer validates its options the same way", () => {
    assert.throws(() => createServer({ maxPayload: 0 }), TypeError);
  });
});

describe("client ids", () => {
  it("are distinct version 4 UUIDs in canonical form, across refills of the random pool", () => {
    const ids = Array.from({ length: 1000 }, () => randomClientId());
    const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    assert.deepEqual(
      ids.filter((id) => !uuidV4.test(id)),
      [],
    );
    assert.equal(new Set(ids).size, ids.length);
    // Every hex digit appears in every free position over 1,000 ids: the bytes are random, not a pattern.
    for (const position of [0, 9, 15, 20, 35]) {
      assert.equal(new Set(ids.map((id) => id[position])).size, 16, `position ${position}`);
    }
  });
});
