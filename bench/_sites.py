"""Stand-in client sites for bench/watch.py: one asyncio HTTP/1.1 server, run as its own process.

    python bench/_sites.py PORT

The path says how a site behaves: /fast/N answers at once with the expected text, /slow/N
after SLOW seconds, /fail/N with 503, /wrong/N without the expected text, /hang/N never,
/flip/N like fast until GET /_control/down/N makes it fail. Every request is logged with
its monotonic time (the same clock in every process on Linux) and status; GET /_control/hits
hands the log over as JSON and empties it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

SLOW = 2.0
PAGE = b"<html><body><h1>Bench Shop</h1><p>Our best lamp. Add to cart</p></body></html>"
WRONG = b"<html><body><h1>Bench Shop</h1><p>Database error</p></body></html>"
hits: list[tuple[str, float, int]] = []
down: set[str] = set()  # the /flip/N sites told to fail


def response(status: int, body: bytes, content_type: bytes = b"text/html") -> bytes:
    reason = {200: b"OK", 503: b"Service Unavailable", 404: b"Not Found"}[status]
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
        status,
        reason,
        content_type,
        len(body),
    )
    return head + body


async def answer(path: str) -> bytes | None:
    """Return the bytes to send for a path, or None to hang."""
    global hits
    if path == "/_control/hits":
        taken, hits = hits, []
        return response(200, json.dumps(taken).encode(), b"application/json")
    if path.startswith("/_control/down/"):
        down.add(path.rsplit("/", 1)[1])
        return response(200, b"down")
    kind = path.split("/")[1] if path.count("/") >= 2 else ""
    if kind == "hang":
        hits.append((path, time.monotonic(), 0))
        return None
    if kind == "slow":
        await asyncio.sleep(SLOW)
    status, body = 200, PAGE
    if kind == "fail" or (kind == "flip" and path.rsplit("/", 1)[1] in down):
        status, body = 503, b"down"
    elif kind == "wrong":
        body = WRONG
    elif kind not in ("fast", "slow", "flip"):
        status, body = 404, b"no such site"
    hits.append((path, time.monotonic(), status))
    return response(status, body)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer requests on one keep-alive connection until the client closes it."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            reply = await answer(path)
            if reply is None:
                await asyncio.sleep(3600)
                return
            writer.write(reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
