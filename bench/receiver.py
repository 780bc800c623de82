"""The webhook phase's receiver: a bare HTTPS server (asyncio streams, no framework) that checks
each delivery's Standard Webhooks signature and counts it by `webhook-id`.

`python -m bench.receiver --port P --cert C --key K` with the endpoint's secret in
BENCH_WEBHOOK_SECRET. Every POST is verified with the `standardwebhooks` package (a wrong
signature is answered 401 and counted `invalid`), then answered 204. Each path keeps its own
counts (the worker's deliveries and the floor's POSTs apart). `GET /stats` gives the counts,
`GET /arrivals?path=/hooks` each webhook-id's count, first arrival (Unix seconds, this machine's
clock) and the `external_id` its data names, so the benchmark can tell loss, duplicates and the
time from answer to delivery.
"""

import argparse
import asyncio
import importlib
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SECRET = "BENCH_WEBHOOK_SECRET"


@dataclass
class Path:
    """What one path was sent."""

    requests: int = 0
    invalid: int = 0
    # webhook-id -> [count, first arrival, external_id]
    seen: dict[str, list[Any]] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        distinct = len(self.seen)
        arrivals = [entry[1] for entry in self.seen.values()]
        return {
            "requests": self.requests,
            "invalid": self.invalid,
            "distinct": distinct,
            "duplicates": sum(entry[0] - 1 for entry in self.seen.values()),
            "first_at": min(arrivals, default=None),
            "last_at": max(arrivals, default=None),
        }


class Receiver:
    def __init__(self, secret: str) -> None:
        self.hook = Webhook(secret)
        self.paths: dict[str, Path] = {}

    def delivered(self, path: str, headers: dict[str, str], body: bytes) -> int:
        counts = self.paths.setdefault(path, Path())
        counts.requests += 1
        try:
            event = self.hook.verify(body, headers)
        except WebhookVerificationError:
            counts.invalid += 1
            return 401
        msg_id = headers["webhook-id"]
        entry = counts.seen.get(msg_id)
        if entry is None:
            external_id = event.get("data", {}).get("external_id")
            counts.seen[msg_id] = [1, time.time(), external_id]
        else:
            entry[0] += 1
        return 204

    def answer(self, target: str) -> bytes:
        parts = urlsplit(target)
        if parts.path == "/stats":
            return json.dumps({p: c.stats() for p, c in self.paths.items()}).encode()
        path = parse_qs(parts.query).get("path", ["/hooks"])[0]
        seen = self.paths.get(path, Path()).seen
        return json.dumps(
            [{"id": k, "count": v[0], "at": v[1], "external_id": v[2]} for k, v in seen.items()]
        ).encode()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "POST":
                    status, content = self.delivered(urlsplit(target).path, headers, body), b""
                else:
                    status, content = 200, self.answer(target)
                reason = {200: "OK", 204: "No Content", 401: "Unauthorized"}[status]
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(content)}\r\n"
                    "Content-Type: application/json\r\n\r\n".encode()
                    + content
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        finally:
            writer.close()


async def main(port: int, cert: str, key: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver = Receiver(os.environ[SECRET])
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", port, ssl=context)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    try:
        factory = importlib.import_module("uvloop").new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args.port, args.cert, args.key))
