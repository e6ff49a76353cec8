"""The server's outer wall, before any route runs: the Host name and the request body's size.

- Host: a web page on another site can reach a loopback port by DNS rebinding (its own name resolving to
  127.0.0.1), but its requests still carry its own name in ``Host``; only loopback names and ``--host`` are
  answered (400). A server listening on every address has a token instead (:class:`serve.config.ServeConfig`).
- Size: a body over ``max_body_bytes`` is refused with 413, by its ``Content-Length`` before a byte is read,
  or, for a body sent without one, as soon as the bytes received pass the limit.

Both answer with the API's JSON error body. A pure ASGI middleware: it sees the stream, not a parsed request.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.config import ServeConfig


def _host_name(header: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"Example.org:80"`` -> ``"example.org"``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    def __init__(self, app: ASGIApp, config: ServeConfig):
        self.app, self.config = app, config
        allowed = config.allowed_hosts
        self.any_host = "*" in allowed
        self.hosts = {h.strip("[]") for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.config.max_body_bytes
        if not self.any_host and _host_name(headers.get("host", "")) not in self.hosts:
            names = ", ".join(sorted(self.hosts))
            message = f"Host {headers.get('host', '')!r} is not served: reach the server as one of {names}"
            await _reply(send, 400, message)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _reply(send, 413, _too_large(f"{int(length)} bytes", limit))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI answers an HTTPException raised while it reads the body
                    raise HTTPException(413, _too_large(f"more than {limit} bytes", limit))
            return message

        await self.app(scope, counted, send)


def _too_large(size: str, limit: int) -> str:
    return (
        f"request body of {size} is over the limit of {limit} bytes: "
        "send fewer or shorter queries per request"
    )


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
