"""The proxy's HTTP/1.1 client against small real servers on loopback: keep-alive reuse,
streaming as bytes arrive, timeouts named by their config keys, closing on early exit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from gateway.proxy.upstream import Timeouts, UpstreamClient, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def answer(body: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, len(body)) + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


class Server:
    """A raw asyncio server that counts connections and runs one handler per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_by_peer = asyncio.Event()
        self.port = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
            if await reader.read(1) == b"":
                self.closed_by_peer.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_peer.set()
        finally:
            writer.close()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


def client(read_s: float = 5.0) -> UpstreamClient:
    return UpstreamClient(Timeouts(connect_s=2.0, read_s=read_s))


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        request = await read_request(reader)
        writer.write(answer(b'{"echo": %d}' % len(request)))
        await writer.drain()


def test_sequential_requests_reuse_one_connection() -> None:
    async def main() -> None:
        async with Server(keep_answering) as server:
            upstream = client()
            for _ in range(3):
                response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
                assert response.status_code == 200
                assert (await response.aread()).startswith(b'{"echo"')
                await response.aclose()
            await upstream.aclose()
            assert server.connections == 1

    run(main())


def test_request_carries_body_path_and_headers() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(answer(b"{}"))
        await writer.drain()

    async def main() -> None:
        async with Server(record) as server:
            upstream = client()
            headers = {"content-type": "application/json", "authorization": "Bearer k"}
            response = await upstream.post(
                "127.0.0.1", server.port, "/v1/chat", b'{"a":1}', headers
            )
            await response.aread()
            await response.aclose()
            await upstream.aclose()

    run(main())
    request = seen[0]
    assert request.startswith(b"POST /v1/chat HTTP/1.1\r\n")
    assert b"authorization: Bearer k\r\n" in request
    assert b"content-length: 7\r\n" in request
    assert request.endswith(b'\r\n\r\n{"a":1}')


def test_stream_chunks_arrive_before_the_answer_ends() -> None:
    release = asyncio.Event()

    async def two_parts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        await release.wait()
        writer.write(chunk(b"data: two\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with Server(two_parts) as server:
            upstream = client()
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            pieces = response.aiter_raw()
            assert await anext(pieces) == b"data: one\n\n"
            release.set()
            assert await anext(pieces) == b"data: two\n\n"
            assert [p async for p in pieces] == []
            await response.aclose()
            await upstream.aclose()

    run(main())


def test_lines_are_split_across_chunk_boundaries() -> None:
    async def split(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # Two separate TCP writes, so the line really arrives in two reads.
        writer.write(CHUNKED_HEAD + chunk(b"data: a"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(chunk(b"bc\n\ndata: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with Server(split) as server:
            upstream = client()
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            lines = [line async for line in response.aiter_lines()]
            await response.aclose()
            await upstream.aclose()
            assert lines == ["data: abc", "", "data: [DONE]", ""]

    run(main())


def test_closing_mid_stream_closes_the_connection_to_the_worker() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD)
        for _ in range(500):
            writer.write(chunk(b"data: tick\n\n"))
            await writer.drain()
            await asyncio.sleep(0.01)

    async def main() -> None:
        async with Server(endless) as server:
            upstream = client()
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            assert await anext(response.aiter_raw())
            await response.aclose()
            await asyncio.wait_for(server.closed_by_peer.wait(), 5)
            await upstream.aclose()

    run(main())


def test_silent_worker_fails_naming_the_read_timeout_key() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        await asyncio.sleep(10)

    async def main() -> None:
        async with Server(silent) as server:
            upstream = client(read_s=0.3)
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            with pytest.raises(UpstreamError, match=r"gateway\.read_timeout_s"):
                async for _ in response.aiter_raw():
                    pass
            await response.aclose()
            await upstream.aclose()

    run(main())


def test_worker_that_never_answers_fails_naming_the_read_timeout_key() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async def main() -> None:
        async with Server(mute) as server:
            upstream = client(read_s=0.3)
            with pytest.raises(UpstreamError, match=r"gateway\.read_timeout_s"):
                await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            await upstream.aclose()

    run(main())


def test_nobody_listening_is_an_upstream_error() -> None:
    async def main() -> None:
        async with Server(keep_answering) as server:
            port = server.port
        upstream = client()
        with pytest.raises(UpstreamError, match="cannot connect") as caught:
            await upstream.post("127.0.0.1", port, "/v1/x", b"{}", {})
        assert caught.value.status == 502
        await upstream.aclose()

    run(main())


def test_worker_dying_mid_stream_is_an_upstream_error() -> None:
    async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        writer.transport.abort()

    async def main() -> None:
        async with Server(dies) as server:
            upstream = client()
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            with pytest.raises(UpstreamError, match="closed the connection"):
                async for _ in response.aiter_raw():
                    pass
            await response.aclose()
            await upstream.aclose()

    run(main())


def test_idle_connection_closed_by_the_worker_is_replaced_transparently() -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with Server(one_then_close) as server:
            upstream = client()
            for _ in range(2):
                response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
                assert await response.aread() == b"{}"
                await response.aclose()
                await asyncio.sleep(0.05)
            await upstream.aclose()
            assert server.connections == 2

    run(main())


def test_malformed_answer_is_an_upstream_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def main() -> None:
        async with Server(garbage) as server:
            upstream = client()
            with pytest.raises(UpstreamError, match="malformed"):
                await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            await upstream.aclose()

    run(main())


def test_header_with_a_line_break_is_refused_before_sending() -> None:
    async def main() -> None:
        async with Server(keep_answering) as server:
            upstream = client()
            with pytest.raises(UpstreamError, match="line break"):
                headers = {"authorization": "Bearer k\r\nx-evil: 1"}
                await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", headers)
            await upstream.aclose()
            assert server.connections == 0

    run(main())


def test_large_stream_is_relayed_whole_when_read_slowly() -> None:
    piece = b"x" * 65536

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD)
        for _ in range(32):  # 2 MiB: past the high-water mark, so reading pauses and resumes
            writer.write(chunk(piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with Server(big) as server:
            upstream = client()
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            total = 0
            async for data in response.aiter_raw():
                total += len(data)
                await asyncio.sleep(0.005)
            await response.aclose()
            await upstream.aclose()
            assert total == 32 * len(piece)

    run(main())


def test_slow_client_is_not_mistaken_for_a_silent_worker() -> None:
    piece = b"y" * 65536

    async def fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(piece) * 24 + b"0\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with Server(fast) as server:
            upstream = client(read_s=0.3)
            response = await upstream.post("127.0.0.1", server.port, "/v1/x", b"{}", {})
            total = 0
            async for data in response.aiter_raw():
                total += len(data)
                await asyncio.sleep(0.4)  # longer than read_s, while reading is paused
            await response.aclose()
            await upstream.aclose()
            assert total == 24 * len(piece)

    run(main())
