"""The asyncio session: one connection to hearthd, many calls in flight on it.

This module owns the connection's state: the table of calls in flight (id -> call), the table
of daemon requests being served (id -> task), the read loop that dispatches every frame, the
``$/hello`` handshake with the version 2 -> 1 fallback, and the failure of every pending call
at once when the connection ends. Bytes and envelopes are :mod:`hearth_client.wire`'s
business; the blocking wrapper is :mod:`hearth_client.sync`.

Layers, as in pynvim's msgpack_rpc: asyncio streams -> :class:`~hearth_client.wire.FrameReader`
-> :class:`Client` (dispatch) -> the caller's coroutines.

Cancellation is asyncio's: cancelling the task awaiting :meth:`Client.call` sends
``[v, 3, id]`` and keeps the id in the table until the daemon's answer arrives (the cancel may
lose the race, §7.2), so the late answer is consumed and the id is never reused.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from typing import Any, Awaitable, Callable, Optional, Union

from . import errors as E
from .errors import ConnectionLost, HearthError
from .wire import (CANCEL, NOTIFICATION, PARTIAL, REQUEST, RESPONSE, EnvelopeError, FrameError,
                   FrameReader, Hello, decode_envelope, encode_cancel, encode_notification,
                   encode_request, encode_response, socket_path)

log = logging.getLogger("hearth_client")

_END = object()  # closes a stream's chunk queue


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


class _Call:
    __slots__ = ("id", "future", "queue", "slots", "key", "timer", "next_seq", "dropped")

    def __init__(self, id_: int, future: asyncio.Future, slots: asyncio.Semaphore):
        self.id, self.future, self.slots = id_, future, slots
        self.queue: Optional[asyncio.Queue] = None
        self.key: Optional[str] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.next_seq = 0
        self.dropped = 0


class Stream:
    """A streamed call: ``async for chunk in stream`` yields the partial results, then
    ``stream.result`` holds the final result. An error answer is raised from the loop.

    ``dropped`` counts chunks the daemon dropped (gaps in ``seq``, §15.1). The request is sent
    on the first iteration; leaving the loop early (``aclose()``, or ``async with``) cancels
    the call. On a version 1 connection no partials come: the loop ends with the result.
    """

    def __init__(self, client: "Client", method: str, params: Any, opts: dict):
        self._client, self._method, self._params, self._opts = client, method, params, opts
        self._call: Optional[_Call] = None
        self.result: Any = None
        self.done = False

    @property
    def dropped(self) -> int:
        return self._call.dropped if self._call else 0

    def __aiter__(self) -> "Stream":
        return self

    async def __anext__(self) -> Any:
        if self.done:
            raise StopAsyncIteration
        await self.start()
        try:
            item = await self._call.queue.get()
        except asyncio.CancelledError:
            self._client._abandon(self._call)
            raise
        if item is _END:
            self.done = True
            fut = self._call.future
            if fut.cancelled():
                raise asyncio.CancelledError()
            if fut.exception() is not None:
                raise fut.exception()
            self.result = fut.result()
            raise StopAsyncIteration
        return item[1]

    async def start(self) -> None:
        """Sends the request now (the first iteration does it otherwise)."""
        if self._call is None:
            self._call = await self._client._start(self._method, self._params, stream=True,
                                                   **self._opts)

    async def aclose(self) -> None:
        """Stops the call if it still runs (sends ``[v, 3, id]``); a loop still iterating
        gets ``CancelledError``."""
        if self._call is not None and not self._call.future.done():
            self._client._abandon(self._call)
            self._call.future.cancel()
            self._call.queue.put_nowait(_END)

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class PendingCall:
    """A call whose request is sent (:meth:`Client.send`); ``await`` it for the answer.

    Cancelling the task that awaits it sends ``[v, 3, id]`` and keeps the id pending until the
    daemon's answer arrives, exactly as for :meth:`Client.call`.
    """

    __slots__ = ("_client", "_call")

    def __init__(self, client: "Client", call: _Call):
        self._client, self._call = client, call

    @property
    def id(self) -> int:
        return self._call.id

    def __await__(self):
        return self._wait().__await__()

    def cancel(self) -> None:
        """Gives up on the call: sends ``[v, 3, id]`` and makes every ``await`` of it raise
        ``CancelledError``; the daemon's late answer is still consumed."""
        self._client._abandon(self._call)
        self._call.future.cancel()

    async def _wait(self) -> Any:
        try:
            return await self._call.future
        except asyncio.CancelledError:
            self._client._abandon(self._call)
            raise


Handler = Callable[[Any], Union[Awaitable[Any], Any]]


class Client:
    """A connection to hearthd. Make one with :func:`connect`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 version: int, path: str):
        self.path = path
        self.version = version
        self.hello: Optional[Hello] = None
        self.fatal: Optional[dict] = None
        self._r, self._w = reader, writer
        self._frames = FrameReader()
        self._next_id = 1
        self._pending: dict[int, _Call] = {}
        self._served: dict[int, asyncio.Task] = {}
        self._handlers: dict[str, Handler] = {}
        self._listeners: dict[Optional[str], list] = {}
        self._keys: dict[str, int] = {}  # version 1 only: supersede emulated here
        self._slots = asyncio.Semaphore(1023)
        self._idle: list[asyncio.Future] = []
        self._lost: Optional[ConnectionLost] = None
        self._closed = asyncio.get_running_loop().create_future()
        self._reader_task = asyncio.create_task(self._read_loop())

    # ------------------------------------------------------------------ calls

    async def call(self, method: str, params: Any = None, *, deadline: Optional[float] = None,
                   supersede: Optional[str] = None) -> Any:
        """Calls ``method`` and returns its result; raises :class:`HearthError` for an error
        answer and :class:`ConnectionLost` if the connection ends first.

        ``deadline`` (seconds) and ``supersede`` (a latest-wins key) are sent as version 2
        options; on a version 1 connection the client enforces them itself, by cancelling.
        """
        sent = await self.send(method, params, deadline=deadline, supersede=supersede)
        return await sent

    async def send(self, method: str, params: Any = None, *, deadline: Optional[float] = None,
                   supersede: Optional[str] = None) -> "PendingCall":
        """Sends the request and returns once it is written, without waiting for the answer:
        ``await`` the returned :class:`PendingCall` for it (what :meth:`call` does)."""
        call = await self._start(method, params, deadline=deadline, supersede=supersede)
        return PendingCall(self, call)

    def stream(self, method: str, params: Any = None, *, deadline: Optional[float] = None,
               supersede: Optional[str] = None) -> Stream:
        """A streamed call (``"stream": true``); see :class:`Stream`."""
        return Stream(self, method, params, {"deadline": deadline, "supersede": supersede})

    async def notify(self, method: str, params: Any = None) -> None:
        """Sends a notification (never answered)."""
        self._check_open()
        self._w.write(encode_notification(self.version, method, params))
        await self._drain()

    def serve(self, method: str, fn: Handler) -> Callable[[], None]:
        """Answers daemon requests for ``method`` (version 2) with ``fn(params)`` (a plain or
        async function). Raise :class:`HearthError` to answer an error; any other exception is
        answered -32603. Returns a function that stops serving it."""
        self._handlers[method] = fn

        def stop() -> None:
            if self._handlers.get(method) is fn:
                del self._handlers[method]
        return stop

    def on_notification(self, method: Optional[str], fn: Callable) -> Callable[[], None]:
        """Calls ``fn(params)`` for each notification ``method`` from the daemon, or
        ``fn(method, params)`` for every notification when ``method`` is None. Returns a
        function that unsubscribes."""
        self._listeners.setdefault(method, []).append(fn)

        def off() -> None:
            fns = self._listeners.get(method, [])
            if fn in fns:
                fns.remove(fn)
        return off

    @property
    def in_flight(self) -> int:
        """Calls sent and not yet answered (abandoned ones included until their answer)."""
        return len(self._pending)

    async def idle(self) -> None:
        """Waits until no call is in flight, late answers to abandoned calls included."""
        if self._pending:
            fut = asyncio.get_running_loop().create_future()
            self._idle.append(fut)
            await fut

    def _wake_idle(self) -> None:
        if not self._pending:
            waiters, self._idle = self._idle, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    @property
    def is_closed(self) -> bool:
        return self._lost is not None

    async def wait_closed(self) -> ConnectionLost:
        """Waits until the connection has ended; returns why."""
        return await asyncio.shield(self._closed)

    async def close(self) -> None:
        """Closes the connection; pending calls fail with :class:`ConnectionLost`."""
        if self._lost is None:
            self._w.close()
            self._reader_task.cancel()
        try:
            await self._reader_task
        except asyncio.CancelledError:
            pass
        try:
            await self._w.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._lost is not None:
            raise ConnectionLost(self._lost.reason, self._lost.fatal_code,
                                 self._lost.fatal_message, self._lost.supported)

    async def _drain(self) -> None:
        try:
            await self._w.drain()
        except (ConnectionError, OSError):
            pass  # the read loop sees the same failure and fails every pending call

    async def _start(self, method: str, params: Any, *, deadline: Optional[float] = None,
                     supersede: Optional[str] = None, stream: bool = False) -> _Call:
        self._check_open()
        slots = self._slots
        await slots.acquire()
        try:
            self._check_open()
        except ConnectionLost:
            slots.release()
            raise
        id_ = self._next_id
        opts: dict = {}
        if self.version >= 2:
            if deadline is not None:
                opts["deadline_ms"] = max(0, math.ceil(deadline * 1000))
            if supersede is not None:
                opts["supersede"] = supersede
            if stream:
                opts["stream"] = True
        # Encode before anything is registered, so a value that cannot be sent fails only this
        # call. A client MUST NOT send a frame above the daemon's max_frame (§4).
        try:
            frame = encode_request(self.version, id_, method, params, opts or None)
        except BaseException:
            slots.release()
            raise
        if len(frame) - 4 > self._frames.max_frame:
            slots.release()
            raise HearthError(E.FRAME_TOO_LARGE, f"request of {len(frame) - 4} bytes is above "
                                                 f"max_frame {self._frames.max_frame}")
        self._next_id += 1
        call = _Call(id_, asyncio.get_running_loop().create_future(), slots)
        if stream:
            # Unbounded, but bounded in practice by the chunks the daemon produces for one
            # call; a consumer that stops reading should aclose() the stream.
            call.queue = asyncio.Queue()
        if self.version < 2:
            if supersede is not None:
                older = self._pending.get(self._keys.get(supersede, -1))
                if older is not None:
                    self._give_up(older, E.Superseded(E.SUPERSEDED, "superseded"))
                self._keys[supersede] = id_
                call.key = supersede
            if deadline is not None:
                call.timer = asyncio.get_running_loop().call_later(
                    max(0.0, deadline), self._give_up, call,
                    E.DeadlineExceeded(E.DEADLINE_EXCEEDED, "deadline exceeded"))
        self._pending[id_] = call
        self._w.write(frame)
        try:
            await self._drain()
        except asyncio.CancelledError:
            self._abandon(call)
            call.future.cancel()
            raise
        return call

    def _give_up(self, call: _Call, err: HearthError) -> None:
        """Fails a call locally (version 1 emulation of deadline and supersede) and cancels it
        on the daemon; its entry stays until the daemon's answer arrives."""
        if call.id in self._pending and not call.future.done():
            call.future.set_exception(err)
            if call.queue is not None:
                call.queue.put_nowait(_END)
            self._abandon(call)

    def _abandon(self, call: _Call) -> None:
        """The caller no longer waits: send a cancel, keep the id pending (§7.2)."""
        # Nobody will read the late answer: mark its exception retrieved when it comes.
        call.future.add_done_callback(_retrieve)
        if call.id in self._pending and self._lost is None:
            try:
                self._w.write(encode_cancel(self.version, call.id))
            except (ConnectionError, OSError, RuntimeError):
                pass

    async def _read_loop(self) -> None:
        reason = "hearthd closed the connection"
        try:
            while True:
                data = await self._r.read(65536)
                if not data:
                    if self._frames.buffered():
                        reason = "hearthd closed the connection in the middle of a frame"
                    break
                for value in self._frames.frames(data):
                    if isinstance(value, EnvelopeError):
                        log.warning("dropping a frame from hearthd: %s", value)
                        continue
                    try:
                        env = decode_envelope(value)
                    except EnvelopeError as e:
                        log.warning("dropping a message from hearthd: %s", e)
                        continue
                    self._dispatch(env)
        except FrameError as e:
            reason = f"broken stream from hearthd: {e}"
            self._w.close()
        except asyncio.CancelledError:
            reason = "the client closed the connection"
        except (ConnectionError, OSError) as e:
            reason = f"connection to hearthd failed: {e}"
        finally:
            self._fail_all(reason)

    def _fail_all(self, reason: str) -> None:
        f = self.fatal or {}
        if self.fatal is not None:
            reason = f"hearthd sent $/fatal {f.get('code')}: {f.get('message')}"
        self._lost = ConnectionLost(reason, f.get("code"), f.get("message"),
                                    f.get("supported"))
        pending, self._pending = self._pending, {}
        for call in pending.values():
            if call.timer:
                call.timer.cancel()
            if not call.future.done():
                call.future.set_exception(ConnectionLost(reason, self._lost.fatal_code,
                                                         self._lost.fatal_message,
                                                         self._lost.supported))
                call.future.exception()  # mark retrieved: nobody may be waiting any more
            if call.queue is not None:
                call.queue.put_nowait(_END)
            call.slots.release()
        self._wake_idle()
        for task in list(self._served.values()):
            task.cancel()
        if not self._closed.done():
            self._closed.set_result(self._lost)
        self._w.close()

    def _dispatch(self, env) -> None:
        kind = env.kind
        if kind == RESPONSE:
            call = self._pending.pop(env.id, None)
            if call is None:
                return  # late answer to something given up, or a stray: drop (§12.1)
            call.slots.release()
            if call.timer:
                call.timer.cancel()
            if call.key is not None and self._keys.get(call.key) == call.id:
                del self._keys[call.key]
            if not call.future.done():
                if env.error is not None:
                    call.future.set_exception(HearthError.from_wire(env.error))
                else:
                    call.future.set_result(env.result)
                if call.queue is not None:
                    call.queue.put_nowait(_END)
            self._wake_idle()
        elif kind == PARTIAL:
            call = self._pending.get(env.id)
            if call is None or call.queue is None or call.future.done():
                return  # a partial for anything else is dropped (§15.7)
            if env.seq > call.next_seq:
                call.dropped += env.seq - call.next_seq
            call.next_seq = env.seq + 1
            call.queue.put_nowait((env.seq, env.chunk))
        elif kind == NOTIFICATION:
            if env.method == "$/fatal":
                self.fatal = env.params if isinstance(env.params, dict) else {}
            self._notify_listeners(env.method, env.params)
        elif kind == REQUEST and self.version >= 2:
            self._serve_request(env)
        elif kind == CANCEL and self.version >= 2:
            task = self._served.pop(env.id, None)
            if task is not None:  # answered here, at once: the handler may not even have run
                self._answer(env.id, error={"code": E.REQUEST_CANCELLED, "message": "cancelled"})
                task.cancel()

    def _notify_listeners(self, method: str, params: Any) -> None:
        for fn in list(self._listeners.get(method, ())):
            try:
                fn(params)
            except Exception:  # a listener's bug must not kill the connection
                log.exception("notification listener for %s failed", method)
        for fn in list(self._listeners.get(None, ())):
            try:
                fn(method, params)
            except Exception:
                log.exception("notification listener failed")

    def _serve_request(self, env) -> None:
        if env.id in self._served:
            return  # the daemon reused an id in flight: the first one is answered
        fn = self._handlers.get(env.method)
        if fn is None:
            self._answer(env.id, error={"code": E.METHOD_NOT_FOUND,
                                        "message": f"no such method: {env.method}"})
            return
        self._served[env.id] = asyncio.create_task(self._serve_one(env.id, fn, env.params))

    async def _serve_one(self, id_: int, fn: Handler, params: Any) -> None:
        # Answers only while this request is still in ``_served``: a daemon cancel answers
        # -32800 and removes it first (even before this task ever ran), so each daemon
        # request is answered exactly once.
        try:
            result = fn(params)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            if self._served.pop(id_, None) is not None:
                self._answer(id_, error={"code": E.REQUEST_CANCELLED, "message": "cancelled"})
        except HearthError as e:
            err = {"code": e.code, "message": e.message}
            if e.data is not None:
                err["data"] = e.data
            if self._served.pop(id_, None) is not None:
                self._answer(id_, error=err)
        except Exception as e:  # noqa: BLE001 - answered -32603, as the daemon would
            if self._served.pop(id_, None) is not None:
                self._answer(id_, error={"code": E.INTERNAL_ERROR, "message": str(e) or repr(e)})
        else:
            if self._served.pop(id_, None) is not None:
                self._answer(id_, result=result)

    def _answer(self, id_: int, result: Any = None, error: Optional[dict] = None) -> None:
        if self._lost is not None:
            return
        try:
            frame = encode_response(self.version, id_, result, error)
        except Exception as e:  # still exactly one answer: say the value could not be sent
            frame = encode_response(self.version, id_, None, {
                "code": E.INTERNAL_ERROR, "message": f"the answer could not be encoded: {e}"})
        self._w.write(frame)

    async def _hello(self, name: str) -> Hello:
        self.hello = Hello.parse(await self.call("$/hello", {"client": name}))
        self._frames.max_frame = self.hello.max_frame
        # Stay below max_in_flight so the daemon keeps reading our cancels (§7.4).
        self._slots = asyncio.Semaphore(max(1, self.hello.max_in_flight - 1))
        return self.hello


async def _open(path: str, version: int) -> Client:
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 16)
    return Client(reader, writer, version, path)


async def connect(path: Optional[str] = None, *, client: str = "hearth_client.py",
                  protocol: int = 2) -> Client:
    """Connects to hearthd (at ``path``, else by the socket path rule of §3.1), says
    ``$/hello`` and returns the :class:`Client`.

    With ``protocol=2`` (the default) a daemon that refuses version 2 with ``$/fatal`` -32004
    listing version 1 is reconnected to in version 1 (§15.2); ``client.version`` tells which
    one the connection speaks.
    """
    path = path or socket_path()
    c = await _open(path, protocol)
    try:
        await c._hello(client)
    except ConnectionLost as e:
        await c.close()
        if protocol >= 2 and e.fatal_code == E.UNSUPPORTED_VERSION and 1 in e.supported:
            c = await _open(path, 1)
            try:
                await c._hello(client)
            except BaseException:
                await c.close()
                raise
        else:
            raise
    except BaseException:
        await c.close()
        raise
    return c
