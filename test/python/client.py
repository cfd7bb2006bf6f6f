#!/usr/bin/python3
"""A conduit-ws client written from the wire protocol (docs/PROTOCOL.md) alone, in another language than the server.

Usage: client.py <ws-url>

Runs the wire protocol's built-ins against the server and prints ONE line of JSON with what it
received, for the test (test/python-client.test.ts) to assert on. Uses Debian's python3-websockets
(10.x: the asyncio API; the sync client only exists from 11.0). Any failure exits non-zero with the
reason on stderr. Every wait is bounded, so the script always ends by itself.
"""
import asyncio
import json
import sys

import websockets

STEP_TIMEOUT = 10.0
ROOM = "py-room"


class Conversation:
    """Sends JSON messages and waits for the next received one that matches, keeping the others."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = []

    async def send(self, message):
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def next(self, predicate):
        for index, message in enumerate(self.pending):
            if predicate(message):
                return self.pending.pop(index)
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), STEP_TIMEOUT)
            if not isinstance(raw, str):
                raise RuntimeError("received a binary frame; the protocol only uses text frames")
            message = json.loads(raw)
            if predicate(message):
                return message
            # Unasked-for messages (presence events, notices) are kept, as the protocol allows.
            self.pending.append(message)

    async def next_type(self, type_):
        return await self.next(lambda m: m.get("type") == type_)

    async def reply_to(self, id_):
        return await self.next(lambda m: m.get("id") == id_)


async def run(url):
    results = {}
    async with websockets.connect(url) as ws:
        talk = Conversation(ws)

        await talk.send({"type": "ping", "data": "2024-01-01T00:00:00Z"})
        results["pong"] = await talk.next_type("pong")

        await talk.send({"type": "ping"})
        results["pong_server_time"] = await talk.next_type("pong")

        await talk.send({"type": "echo", "data": {"n": [1, "two", None], "ok": True}})
        results["echo"] = await talk.next_type("echo")

        await talk.send({"type": "join_room", "data": {"room": ROOM}})
        results["room_joined"] = await talk.next_type("room_joined")

        await talk.send({"type": "broadcast", "data": {"room": ROOM, "type": "chat", "payload": {"text": "hi from python"}}})
        results["broadcast_copy"] = await talk.next_type("chat")

        await talk.send({"type": "status"})
        results["status"] = await talk.next_type("status")

        await talk.send({"type": "echo", "data": "with id", "id": "py-1"})
        results["echo_with_id"] = await talk.reply_to("py-1")

        await talk.send({"type": "broadcast", "id": "py-2", "data": {"room": ROOM, "type": "chat", "payload": 2}})
        results["broadcast_ack"] = await talk.reply_to("py-2")
        results["broadcast_copy_2"] = await talk.next_type("chat")

        await talk.send({"type": "presence", "data": {"room": ROOM}, "id": "py-3"})
        results["presence"] = await talk.reply_to("py-3")

        await talk.send("{this is not json")
        results["bad_json"] = await talk.next_type("error")

        await talk.send({"type": "no_such_type", "id": "py-4"})
        results["unknown_type"] = await talk.reply_to("py-4")

        # The connection survived the bad input.
        await talk.send({"type": "ping", "data": "after-errors", "id": "py-5"})
        results["pong_after_errors"] = await talk.reply_to("py-5")

        await talk.send({"type": "leave_room", "data": {"room": ROOM}, "id": "py-6"})
        results["room_left"] = await talk.reply_to("py-6")

        results["unasked"] = talk.pending
    print(json.dumps(results), flush=True)


def main():
    if len(sys.argv) != 2:
        print("usage: client.py <ws-url>", file=sys.stderr)
        sys.exit(2)
    asyncio.run(asyncio.wait_for(run(sys.argv[1]), 60))


if __name__ == "__main__":
    main()
