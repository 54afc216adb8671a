"""Running ASGI apps on uvicorn inside one event loop (demo, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

__all__ = ["free_port", "pick_port", "serving"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free, otherwise any free port."""
    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, preferred))
                return preferred
            except OSError:
                pass
    return free_port(host)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self):  # noqa: ANN201
        yield


@contextlib.asynccontextmanager
async def serving(app: object, port: int, host: str = "127.0.0.1", **uvicorn_kwargs: object
                  ) -> AsyncIterator[uvicorn.Server]:
    """Serve ``app`` until the block exits; raises if startup fails."""
    kwargs: dict[str, object] = {"log_level": "warning", "lifespan": "on", "access_log": False}
    kwargs.update(uvicorn_kwargs)
    server = _QuietServer(uvicorn.Config(app, host=host, port=port, **kwargs))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"server on {host}:{port} did not start")
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
