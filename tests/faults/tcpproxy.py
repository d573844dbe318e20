"""A TCP proxy that cuts connections, for testing clients and servers on a flaky network.

`TcpProxy(upstream_port)` listens on a free local port and relays each
connection to the upstream, optionally delaying every chunk by `delay`
seconds each way (latency, order kept). While `cutting` is on, every
connection is cut after a random lifetime drawn from `lifetime`: both sides
are aborted at once, as when a phone changes networks. Cutting can be turned
off, after which connections live on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time


class TcpProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        lifetime: tuple[float, float] = (1.0, 3.0),
        delay: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.lifetime = lifetime
        self.delay = delay
        self.cutting = False
        self.cuts = 0
        self.connections = 0
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.BaseTransport] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for transport in list(self._transports):
            transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        transports = (writer.transport, up_writer.transport)
        self._transports.update(transports)
        pipes = [
            self._spawn(self._pipe(reader, up_writer)),
            self._spawn(self._pipe(up_reader, writer)),
        ]
        cutter = self._spawn(self._cut_later(transports))
        with contextlib.suppress(BaseException):
            await asyncio.gather(*pipes)
        cutter.cancel()
        for transport in transports:
            transport.abort()
            self._transports.discard(transport)

    async def _cut_later(self, transports: tuple[asyncio.BaseTransport, ...]) -> None:
        """Cut the connection at the end of a random lifetime, if cutting is on by then."""
        while not any(t.is_closing() for t in transports):
            await asyncio.sleep(self._random.uniform(*self.lifetime))
            if self.cutting and not any(t.is_closing() for t in transports):
                self.cuts += 1
                for transport in transports:
                    transport.abort()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Relay bytes in order, each chunk `delay` seconds after it was read."""
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while data := await source.read(65536):
                chunks.put_nowait((time.monotonic() + self.delay, data))
            chunks.put_nowait((time.monotonic() + self.delay, b""))

        reading = self._spawn(read())
        try:
            while True:
                due, data = await chunks.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()
        finally:
            reading.cancel()
            sink.transport.abort()
