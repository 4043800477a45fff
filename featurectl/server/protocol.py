"""uvicorn's httptools protocol, with each response's status line and headers written together
with its body: one socket write per answer instead of two.

uvicorn writes the head when the app sends `http.response.start` and the body at
`http.response.body`: two send system calls and two TCP segments per response, which on
loopback each cost the sender the kernel's whole TCP path and the client a second read
(docs/benchmarks.md, "Request path: one write per response ..."). Here the head is held from
the start message to the first body message and written in front of the body's bytes.
Everything else, the head's bytes included, is uvicorn's own code. The hooks are uvicorn
internals (the cycle class its protocol builds, the cycle's `transport` attribute):
pyproject.toml pins the uvicorn versions they were checked on, and
tests/integration/test_serve_protocol.py fails if the shape changes.
"""
from __future__ import annotations

from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeldHead:
    """A cycle's transport from its response start to the end of its first body message: what
    uvicorn writes meanwhile (the head, then the first body bytes) is kept and written at once.
    The rest of the transport (is_closing, pause_reading, ...) is the real one's."""

    __slots__ = ("transport", "held")

    def __init__(self, transport: Any):
        self.transport: Any = transport
        self.held: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.held.append(data)

    def flush(self) -> None:
        if self.held:
            self.transport.write(b"".join(self.held))
            self.held = []

    def close(self) -> None:  # a response without keep-alive: its bytes go first
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, its head written with its first body message."""

    async def send(self, message: Any) -> None:
        held = self.transport
        if type(held) is _HeldHead:  # the first body message: written with the head
            try:
                await super().send(message)
            finally:
                self.transport = held.transport
                held.flush()
            return
        if not self.response_started:  # the start (uvicorn checks the type): its head is held
            self.transport = cast(Any, _HeldHead(held))  # stands in for the transport (above)
        await super().send(message)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (`http=` of uvicorn.run) whose cycles are `OneWriteCycle`s."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # uvicorn has just made the cycle (and its task, not yet run): it becomes a OneWriteCycle
        # here rather than by re-implementing on_headers_complete.
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = OneWriteCycle
