import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { createJwtAuthHandler } from "../src/cli/jwt.js";
import { createServer, type Logger } from "../src/index.js";
import { enforcedByNode, nodeHandshakeTimeout } from "../src/upgrade/handshake-guard.js";
import { MAX_USER_ID_LENGTH } from "../src/upgrade/tokens.js";
import { connect, refusedStatus, type TestClient } from "./helpers/client.js";
import { openRaw, rawUpgrade } from "./helpers/raw.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { waitFor, within } from "./helpers/wire.js";

async function userOf(c: TestClient): Promise<string | null> {
  return (await c.request("status")).data.user_id as string | null;
}

async function listenHttp(server: HttpServer): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

async function closeHttp(server: HttpServer): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("auth handler", () => {
  let t: TestServer;
  const logLines: string[] = [];
  const capture = (fields: Record<string, unknown>, message: string): void => {
    logLines.push(`${message} ${JSON.stringify(fields)}`);
  };
  const logger: Logger = { info: capture, warn: capture, error: capture, debug: capture };

  before(async () => {
    t = await startServer({ logger }, (server) => {
      server.setAuthHandler(async (_ctx, token) => {
        switch (token) {
          case "alice":
            return "alice";
          case "meta":
            return { userId: "bob", metadata: { role: "admin" } };
          case "slow-ok":
            await new Promise((resolve) => setImmediate(resolve));
            return "carol";
          case "throws":
            throw new Error("no such session");
          case "false":
            return false;
          default:
            return null;
        }
      });
      server.registerHandler("role", (ctx, client) => ctx.reply("role", client.getMetadata("role") ?? null));
    });
  });
  after(() => t.close());

  it("accepts a token from ?token= and reports its user_id in status", async () => {
    const c = await connect(`${t.url}?token=alice`);
    assert.equal(await userOf(c), "alice");
    assert.equal(t.server.getClient((await c.request("status")).data.client_id)?.userId, "alice");
    await c.close();
  });

  it("accepts a token from Authorization: Bearer, and ?token= wins over the header", async () => {
    const c = await connect(t.url, { headers: { Authorization: "Bearer alice" } });
    assert.equal(await userOf(c), "alice");
    await c.close();
    const both = await connect(`${t.url}?token=alice`, { headers: { Authorization: "Bearer nobody" } });
    assert.equal(await userOf(both), "alice");
    await both.close();
  });

  it("an async auth handler may accept", async () => {
    const c = await connect(`${t.url}?token=slow-ok`);
    assert.equal(await userOf(c), "carol");
    await c.close();
  });

  it("an auth result with metadata puts the metadata on the client", async () => {
    const c = await connect(`${t.url}?token=meta`);
    assert.equal(await userOf(c), "bob");
    assert.deepEqual(await c.request("role", undefined, "r"), { type: "role", data: "admin", id: "r" });
    await c.close();
  });

  it("a missing token is HTTP 401 with no upgrade", async () => {
    assert.equal(await refusedStatus(t.url), 401);
    assert.equal(await refusedStatus(`${t.url}?token=`), 401);
    assert.equal(await refusedStatus(t.url, { headers: { Authorization: "Basic YWxpY2U6eA==" } }), 401);
    assert.equal(t.server.clientCount, 0);
  });

  it("a rejected token (null, false, throw, async rejection) is HTTP 401; the token is never logged", async () => {
    for (const token of ["wrong-sekrit-7731", "false", "throws"]) {
      assert.equal(await refusedStatus(`${t.url}?token=${token}`), 401, token);
    }
    assert.equal(await refusedStatus(t.url, { headers: { Authorization: "Bearer wrong-sekrit-7731" } }), 401);
    assert.equal(t.server.clientCount, 0);
    assert.ok(!logLines.some((line) => line.includes("wrong-sekrit-7731")), logLines.join("\n"));
    // The accepted tokens of the tests above are not logged either.
    assert.ok(!logLines.some((line) => line.includes("slow-ok")), logLines.join("\n"));
  });
});

describe("auth: the length of a user id", () => {
  let t: TestServer;
  const logLines: string[] = [];
  const capture = (fields: Record<string, unknown>, message: string): void => {
    logLines.push(`${message} ${JSON.stringify(fields)}`);
  };
  const logger: Logger = { info: capture, warn: capture, error: capture, debug: capture };
  // An auth handler that trusts its token as the user id: the worst case for a log line.
  const longest = "u".repeat(MAX_USER_ID_LENGTH);
  const tooLong = `id-sekrit-${"u".repeat(10_000)}`;

  before(async () => {
    t = await startServer({ logger }, (server) => {
      server.setAuthHandler((_ctx, token) => (token.startsWith("meta:") ? { userId: token.slice(5), metadata: {} } : token));
    });
  });
  after(() => t.close());

  it(`a user id of ${MAX_USER_ID_LENGTH} characters is accepted; a longer one (string or object result) is HTTP 401, logged without the token`, async () => {
    const c = await connect(`${t.url}?token=${longest}`);
    assert.equal(await userOf(c), longest);
    await c.close();
    assert.equal(await refusedStatus(`${t.url}?token=${longest}u`), 401);
    assert.equal(await refusedStatus(`${t.url}?token=${tooLong}`), 401);
    assert.equal(await refusedStatus(`${t.url}?token=meta:${tooLong}`), 401);
    assert.equal(t.server.clientCount, 0);
    assert.equal(logLines.filter((line) => line.includes("user id too long")).length, 3, logLines.join("\n"));
    assert.ok(!logLines.some((line) => line.includes("id-sekrit")), logLines.join("\n"));
  });

  it(`the standalone server's JWT: a sub of ${MAX_USER_ID_LENGTH} characters is accepted, a 10 KB sub is HTTP 401, logged without the token`, async () => {
    const secret = "s".repeat(32);
    const jwtLines: string[] = [];
    const jwtCapture = (fields: Record<string, unknown>, message: string): void => {
      jwtLines.push(`${message} ${JSON.stringify(fields)}`);
    };
    const jwtLogger: Logger = { info: jwtCapture, warn: jwtCapture, error: jwtCapture, debug: jwtCapture };
    const server = createServer({ logger: jwtLogger }).setAuthHandler(createJwtAuthHandler(secret, jwtLogger));
    const { url } = await server.listen(0, "127.0.0.1");
    const sign = (sub: string): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).sign(new TextEncoder().encode(secret));
    try {
      const c = await connect(`${url}?token=${await sign(longest)}`);
      assert.equal(await userOf(c), longest);
      await c.close();
      const token = await sign(`sub-sekrit-${"u".repeat(10_000)}`);
      assert.equal(await refusedStatus(`${url}?token=${token}`), 401);
      assert.equal(server.clientCount, 0);
      assert.ok(
        jwtLines.some((line) => line.startsWith("jwt refused") && line.includes("sub_too_long")),
        jwtLines.join("\n"),
      );
      assert.ok(!jwtLines.some((line) => line.includes(token) || line.includes("sub-sekrit")), jwtLines.join("\n"));
    } finally {
      await server.shutdown();
    }
  });
});

describe("auth: a custom tokenExtractor and a synchronous auth handler", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ tokenExtractor: (request) => request.headers["x-api-key"] as string | undefined }, (server) => {
      // A synchronous handler: it returns null or throws to refuse.
      server.setAuthHandler((_ctx, token) => {
        if (token === "boom") throw new Error("session store down");
        return token === "k1" ? "key-user" : null;
      });
    });
  });
  after(() => t.close());

  it("the extractor replaces ?token= and the Authorization header; sync null or throw is 401", async () => {
    const c = await connect(t.url, { headers: { "X-Api-Key": "k1" } });
    assert.equal(await userOf(c), "key-user");
    await c.close();
    assert.equal(await refusedStatus(`${t.url}?token=k1`), 401);
    assert.equal(await refusedStatus(t.url, { headers: { Authorization: "Bearer k1" } }), 401);
    assert.equal(await refusedStatus(t.url, { headers: { "X-Api-Key": "other" } }), 401, "sync null");
    assert.equal(await refusedStatus(t.url, { headers: { "X-Api-Key": "boom" } }), 401, "sync throw");
    assert.equal(t.server.clientCount, 0);
  });
});

describe("allowedOrigins", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ allowedOrigins: ["https://good.example", "http://localhost:3000"] });
  });
  after(() => t.close());

  it("accepts a listed Origin and a request without Origin", async () => {
    for (const origin of ["https://good.example", "http://localhost:3000", undefined]) {
      const c = await connect(t.url, origin === undefined ? {} : { origin });
      assert.equal((await c.request("echo", 1)).type, "echo", String(origin));
      await c.close();
    }
  });

  it("refuses any other Origin with 403, look-alikes and null included", async () => {
    for (const origin of [
      "https://evil.example",
      "null",
      "https://good.example.evil.example",
      "https://evil.example/https://good.example",
      "https://sub.good.example",
      "http://good.example",
      "https://good.example:8443",
      "http://localhost:3001",
      "http://localhost",
    ]) {
      assert.equal(await refusedStatus(t.url, { origin }), 403, origin);
    }
    assert.equal(t.server.clientCount, 0);
  });
});

describe("admission: connection limit, shutdown, path", () => {
  it("maxConnections: the third connection gets 503, and one is accepted again after a client leaves", async () => {
    const t = await startServer({ maxConnections: 2 });
    try {
      const a = await connect(t.url);
      const b = await connect(t.url);
      assert.equal(await refusedStatus(t.url), 503);
      const left = once(t.server, "disconnect");
      await a.close();
      await left;
      const c = await connect(t.url);
      assert.equal((await c.request("echo", "in")).type, "echo");
      assert.equal(await refusedStatus(t.url), 503);
      await Promise.all([b.close(), c.close()]);
    } finally {
      await t.close();
    }
  });

  it("while shutting down, a new connection gets 503", async () => {
    const t = await startServer({ shutdownTimeout: 30_000 });
    // A peer that never answers the close frame keeps the shutdown in its draining phase.
    const stubborn = await rawUpgrade(t.port);
    await waitFor(() => t.server.clientCount === 1, "the raw peer to join the hub");
    const done = t.server.shutdown();
    assert.equal(t.server.isShuttingDown, true);
    assert.equal(await refusedStatus(t.url), 503);
    stubborn.socket.destroy();
    await within(done, 10_000, "shutdown after the last peer left");
    await assert.rejects(connect(t.url), "nothing listens after shutdown");
  });

  it("a request for another path is refused", async () => {
    const t = await startServer();
    try {
      assert.equal(await refusedStatus(`ws://127.0.0.1:${t.port}/other`), 400);
      assert.equal(await refusedStatus(`ws://127.0.0.1:${t.port}/ws/extra`), 400);
      const c = await connect(`ws://127.0.0.1:${t.port}/ws?x=1`);
      await c.close();
    } finally {
      await t.close();
    }
  });
});

describe("embedding: attach() and handler()", () => {
  it("attach(httpServer, { path }) serves the endpoint beside the application's HTTP routes", async () => {
    const http = createHttpServer((_request, response) => response.end("plain http"));
    const server = createServer().attach(http, { path: "/live" });
    const port = await listenHttp(http);
    try {
      const c = await connect(`ws://127.0.0.1:${port}/live`);
      assert.deepEqual(await c.request("echo", "x", "e"), { type: "echo", data: { original: "x" }, id: "e" });
      const body = await new Promise<string>((resolve, reject) => {
        httpGet(`http://127.0.0.1:${port}/`, (response) => {
          let text = "";
          response.on("data", (chunk: Buffer) => (text += chunk.toString()));
          response.on("end", () => resolve(text));
        }).on("error", reject);
      });
      assert.equal(body, "plain http");
      assert.equal(await refusedStatus(`ws://127.0.0.1:${port}/ws`), 400, "only the attached path upgrades");
      await c.close();
    } finally {
      await server.shutdown();
      await closeHttp(http);
    }
  });

  it("server.handler() serves its path inside the user's own upgrade listener and leaves the rest", async () => {
    const http = createHttpServer();
    const server = createServer();
    const onUpgrade = server.handler();
    let leftToUser = 0;
    http.on("upgrade", (request, socket, head) => {
      if (onUpgrade(request, socket, head)) return;
      leftToUser++;
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    const port = await listenHttp(http);
    try {
      const c = await connect(`ws://127.0.0.1:${port}/ws`);
      assert.equal((await c.request("echo", 1)).type, "echo");
      assert.equal(await refusedStatus(`ws://127.0.0.1:${port}/elsewhere`), 404);
      assert.equal(leftToUser, 1);
      await c.close();
    } finally {
      await server.shutdown();
      await closeHttp(http);
    }
  });
});

describe("handshake timeout", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ handshakeTimeout: 300 });
  });
  after(() => t.close());

  it("closes a socket that sent half an upgrade request, or nothing, within handshakeTimeout", async () => {
    const connected = await connect(t.url);
    const half = await openRaw(t.port);
    half.socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`);
    const silent = await openRaw(t.port);
    // Node's own header timeout is a minute: closing within seconds is the handshake timeout's work.
    await within(half.closed, 5000, "the half-sent request to be closed");
    await within(silent.closed, 5000, "the silent socket to be closed");
    // On the server listen() creates, node's own header timeout does it, with a 408.
    assert.match(silent.bytes().toString(), /^HTTP\/1\.1 408 /);
    assert.equal(t.server.clientCount, 1);
    // A connection that completed its upgrade before the timer would have fired is unaffected.
    assert.equal((await connected.request("echo", "alive")).type, "echo");
    await connected.close();
  });

  it("leaves the work to node when the HTTP server's own header timeout already does it", () => {
    assert.equal(enforcedByNode(createHttpServer(nodeHandshakeTimeout(500)), 500), true, "listen()'s and the CLI's servers");
    assert.equal(enforcedByNode(createHttpServer({}), 500), false, "node's defaults: a minute, checked every 30 s");
    assert.equal(enforcedByNode(createHttpServer({ headersTimeout: 500 }), 500), false, "checked only every 30 s");
    assert.equal(enforcedByNode(createHttpServer({ headersTimeout: 400, connectionsCheckingInterval: 100 }), 500), true);
    assert.equal(
      enforcedByNode(createHttpServer({ headersTimeout: 600, connectionsCheckingInterval: 100 }), 500),
      false,
      "a longer timeout",
    );
    assert.equal(
      enforcedByNode(createHttpServer({ headersTimeout: 0, connectionsCheckingInterval: 100 }), 500),
      false,
      "no header timeout",
    );
  });

  it("closes them too on an HTTP server the application attaches to (its own timeouts left as they are)", async () => {
    const http = createHttpServer((_request, response) => response.end("plain http"));
    const server = createServer({ handshakeTimeout: 300 }).attach(http);
    const port = await listenHttp(http);
    try {
      const connected = await connect(`ws://127.0.0.1:${port}/ws`);
      const half = await openRaw(port);
      half.socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`);
      const silent = await openRaw(port);
      await within(half.closed, 5000, "the half-sent request to be closed");
      await within(silent.closed, 5000, "the silent socket to be closed");
      assert.equal(silent.bytes().length, 0, "closed by conduit-ws's sweep: no 408 from node");
      assert.equal(http.headersTimeout, 60_000, "the application's server keeps node's header timeout");
      assert.equal((await connected.request("echo", "alive")).type, "echo");
      await connected.close();
    } finally {
      await server.shutdown();
      await closeHttp(http);
    }
  });
});
