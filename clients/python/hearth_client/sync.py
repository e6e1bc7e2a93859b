"""A blocking wrapper for scripts: the asyncio :class:`~hearth_client.session.Client` run on an
event loop in a background thread.

It owns that thread and loop and nothing else; every call is forwarded to the async client,
so the semantics (ids, cancel, fallback) are the same. Handlers and notification listeners
registered through it run on the background loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Optional

from .session import Client, connect
from .start import connect_or_start


class SyncClient:
    """``with hearth_client.connect_sync() as c: c.call("echo", 1)``.

    ``start`` (a dict of :func:`~hearth_client.start.connect_or_start` options, ``{}`` for the
    defaults) connects with start on first use; without it the client never starts a daemon.
    """

    def __init__(self, path: Optional[str] = None, *, client: str = "hearth_client.py",
                 protocol: int = 2, start: Optional[dict] = None):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="hearth-client")
        self._thread.start()
        try:
            if start is None:
                opening = connect(path, client=client, protocol=protocol)
            else:
                opening = connect_or_start(path, client=client, protocol=protocol, **start)
            self._client: Client = self._run(opening)
        except BaseException:
            self._stop()
            raise

    def _run(self, coro, timeout: Optional[float] = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def hello(self):
        return self._client.hello

    @property
    def version(self) -> int:
        return self._client.version

    def call(self, method: str, params: Any = None, *, deadline: Optional[float] = None,
             supersede: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """Blocks for the answer. ``timeout`` (seconds) gives up locally, cancelling the call
        on the daemon, and raises ``TimeoutError``."""
        fut = asyncio.run_coroutine_threadsafe(
            self._client.call(method, params, deadline=deadline, supersede=supersede),
            self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()  # cancels the task: the client sends [v, 3, id]
            raise

    def stream(self, method: str, params: Any = None, **opts) -> tuple[list, Any]:
        """Runs a streamed call to the end; returns ``(chunks, result)``."""
        async def run():
            s = self._client.stream(method, params, **opts)
            chunks = [c async for c in s]
            return chunks, s.result
        return self._run(run())

    def notify(self, method: str, params: Any = None) -> None:
        self._run(self._client.notify(method, params))

    def serve(self, method: str, fn: Callable[[Any], Any]) -> None:
        """Answers daemon requests for ``method`` with ``fn(params)`` (run on the loop)."""
        self._loop.call_soon_threadsafe(self._client.serve, method, fn)

    def on_notification(self, method: Optional[str], fn: Callable) -> None:
        self._loop.call_soon_threadsafe(self._client.on_notification, method, fn)

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect_sync(path: Optional[str] = None, **kw) -> SyncClient:
    """Connects and says ``$/hello``, blocking; see :class:`SyncClient`. Never starts a daemon."""
    return SyncClient(path, **kw)


def connect_or_start_sync(path: Optional[str] = None, *, client: str = "hearth_client.py",
                          protocol: int = 2, **start) -> SyncClient:
    """:func:`~hearth_client.start.connect_or_start`, blocking: connects, starting hearthd when
    nothing answers (same options, same errors); see :class:`SyncClient`."""
    return SyncClient(path, client=client, protocol=protocol, start=start)
