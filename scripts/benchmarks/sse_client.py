"""The benchmarks' reader of a streamed answer: one blocking keep-alive HTTP/1.1
connection, responses framed by httptools, each SSE event's JSON decoded as it arrives.

Why not httpx here: a new httpx.Client builds an SSL context (10-200 ms here, counted in
time to first token if it happens inside the clock), and its line iterator costs ~250 us
of CPU per event on these 2 cores, taken from the server being measured. This reader
costs a socket read and a json.loads per event, which any client needs.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httptools


class StreamFailed(RuntimeError):
    """The server answered with an error status, or broke off the answer."""


class _Framer:
    """httptools callbacks: the body pieces that arrived, and whether the answer ended."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = True
        self.headers_done = False
        self.framed = False  # content-length or chunked; else the body ends at the close

    def on_header(self, name: bytes, _value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()


class StreamClient:
    """POST a JSON body, iterate the `data:` payloads of the SSE answer as they arrive."""

    def __init__(self, base_url: str, timeout: float = 300) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._socket: socket.socket | None = None

    def connect(self) -> None:
        """Open the connection now (outside any clock); later requests reuse it."""
        if self._socket is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket = sock

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> StreamClient:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def events(self, path: str, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each event's JSON payload, until `data: [DONE]` or the answer's end."""
        self.connect()
        assert self._socket is not None
        sock, framer = self._socket, _Framer()
        sock.sendall(_request(self.host, self.port, path, json.dumps(payload).encode()))
        pending = b""
        try:
            while not framer.complete:
                data = sock.recv(65536)
                if not data:
                    if not framer.headers_done or framer.framed:
                        raise StreamFailed("the server closed the connection mid-answer")
                    # An HTTP/1.0-style answer (mlx_lm.server's): its end is the close.
                    framer.complete, framer.keep_alive = True, False
                else:
                    framer.parser.feed_data(data)
                status = framer.parser.get_status_code()
                if status != 200:
                    continue  # read the error body whole, below
                pending += b"".join(framer.body)
                framer.body.clear()
                *whole, pending = pending.split(b"\n\n")
                yield from _payloads(whole)
            if framer.parser.get_status_code() != 200:
                text = b"".join(framer.body).decode(errors="replace")
                raise StreamFailed(f"HTTP {framer.parser.get_status_code()}: {text[:300]}")
        finally:
            if not (framer.complete and framer.keep_alive):
                self.close()  # an answer left half-read cannot share its connection


def _payloads(events: list[bytes]) -> Iterator[dict[str, Any]]:
    for event in events:
        for line in event.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                yield json.loads(line[6:])


def _request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
    head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body
