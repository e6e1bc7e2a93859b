"""Behaviour of the Python client beyond the shared vectors: the socket path rule, the typed
errors, and live checks against a real hearthd — many calls on one connection, the local
in-flight limit, version 1 emulation of deadline and supersede, close, a large frame, handler
errors passed back through ``ask``, task cancellation and the synchronous wrapper."""

import asyncio
import os

import pytest

import hearth_client
from hearth_client import (ConnectionLost, DeadlineExceeded, HearthError, RequestCancelled,
                           Superseded, socket_path)

from support import GUARD, Daemon


def test_socket_path_rule():
    uid = os.getuid()
    assert socket_path({"HEARTH_SOCKET": "/x/y.sock", "XDG_RUNTIME_DIR": "/run/u"}) == "/x/y.sock"
    assert socket_path({"HEARTH_SOCKET": "", "XDG_RUNTIME_DIR": "/run/u"}) == \
        "/run/u/hearth/hearthd.sock"
    assert socket_path({"XDG_RUNTIME_DIR": "rel/dir"}) == f"/tmp/hearth-{uid}/hearthd.sock"
    assert socket_path({"XDG_RUNTIME_DIR": ""}) == f"/tmp/hearth-{uid}/hearthd.sock"
    assert socket_path({}) == f"/tmp/hearth-{uid}/hearthd.sock"


def test_typed_errors():
    s = HearthError.from_wire({"code": -32801, "message": "superseded"})
    assert isinstance(s, Superseded) and s.is_superseded and not s.is_deadline
    d = HearthError.from_wire({"code": -32002, "message": "late", "data": {"ms": 5}})
    assert isinstance(d, DeadlineExceeded) and d.is_deadline and d.data == {"ms": 5}
    c = HearthError.from_wire({"code": -32800, "message": "request cancelled"})
    assert isinstance(c, RequestCancelled) and c.is_cancelled
    a = HearthError.from_wire({"code": 7, "message": "app"})
    assert type(a) is HearthError and (a.code, a.message, a.data) == (7, "app", None)


def live(*args):
    """Runs the decorated coroutine with a fresh hearthd (``--max-in-flight 4``)."""
    def wrap(fn):
        def test():
            async def main():
                d = await Daemon.start("--max-in-flight", "4", *args)
                try:
                    await asyncio.wait_for(fn(d), GUARD)
                finally:
                    await d.kill()
            asyncio.run(main())
        test.__name__ = fn.__name__
        return test
    return wrap


@live()
async def test_many_calls_in_flight_matched_by_id(d):
    async with await hearth_client.connect(d.socket) as c:
        got = await asyncio.gather(*(c.call("echo", {"i": i, "s": "x" * (i % 17)})
                                     for i in range(300)))
        assert got == [{"i": i, "s": "x" * (i % 17)} for i in range(300)]
        assert c.in_flight == 0


@live()
async def test_local_in_flight_limit(d):
    async with await hearth_client.connect(d.socket) as c:
        assert c.hello.max_in_flight == 4
        peak = 0

        async def one():
            nonlocal peak
            sent = await c.send("sleep", {"ms": 1})
            peak = max(peak, c.in_flight)
            return await sent
        await asyncio.gather(*(one() for _ in range(20)))
        assert peak <= 3, peak


@live()
async def test_v1_emulates_deadline_and_supersede(d):
    async with await hearth_client.connect(d.socket, protocol=1) as c:
        assert c.version == 1
        with pytest.raises(DeadlineExceeded):
            await c.call("sleep", {"ms": 60000}, deadline=0.02)
        old = await c.send("sleep", {"ms": 60000}, supersede="k")
        new = await c.send("sleep", {"ms": 1}, supersede="k")
        with pytest.raises(Superseded):
            await old
        assert await new == {"slept_ms": 1}
        await c.idle()


@live()
async def test_task_cancellation_sends_cancel_and_consumes_late_answer(d):
    async with await hearth_client.connect(d.socket) as c:
        task = asyncio.ensure_future(c.call("sleep", {"ms": 60000}))
        assert await c.call("echo", 1) == 1  # the sleep is surely sent by now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await c.idle()
        stats = await c.call("$/stats")
        assert stats["in_flight"] == 0


@live()
async def test_close_fails_every_pending_call(d):
    c = await hearth_client.connect(d.socket)
    calls = [asyncio.ensure_future(c.call("sleep", {"ms": 60000})) for _ in range(2)]
    await c.call("echo", 0)
    await c.close()
    for t in calls:
        with pytest.raises(ConnectionLost):
            await t
    with pytest.raises(ConnectionLost):
        await c.call("echo", 1)


@live()
async def test_large_value_crosses_many_reads(d):
    async with await hearth_client.connect(d.socket) as c:
        big = bytes(i % 251 for i in range(3 * 1024 * 1024))
        assert await c.call("echo", big) == big


@live()
async def test_handler_error_goes_back_through_ask(d):
    async with await hearth_client.connect(d.socket) as c:
        assert c.version == 2, "needs a version 2 hearthd"

        async def fail(params):
            raise HearthError(4242, "no config here", {"why": "test"})
        c.serve("editor/fail", fail)
        await c.notify("x/nobody-listens", {"a": 1})
        with pytest.raises(HearthError) as info:
            await c.call("ask", {"method": "editor/fail", "params": None})
        assert (info.value.code, info.value.message, info.value.data) == \
            (4242, "no config here", {"why": "test"})


def test_sync_wrapper():
    async def start():
        return await Daemon.start()
    loop = asyncio.new_event_loop()
    d = loop.run_until_complete(start())
    try:
        with hearth_client.connect_sync(d.socket) as c:
            assert c.call("echo", {"hi": 1}) == {"hi": 1}
            with pytest.raises(DeadlineExceeded):
                c.call("sleep", {"ms": 60000}, deadline=0.02)
            if c.version >= 2:
                assert c.stream("count", {"n": 3, "interval_ms": 0}) == ([0, 1, 2], 3)
    finally:
        loop.run_until_complete(d.kill())
        loop.close()


@live()
async def test_leaving_a_stream_early_cancels_it(d):
    async with await hearth_client.connect(d.socket) as c:
        assert c.version == 2, "needs a version 2 hearthd"
        got = []
        async with c.stream("count", {"n": 1000000, "interval_ms": 5}) as s:
            async for chunk in s:
                got.append(chunk)
                if len(got) == 3:
                    break
        assert got == [0, 1, 2]
        await c.idle()
        assert (await c.call("$/stats"))["in_flight"] == 0


@live()
async def test_load_mode_reports_rate_and_percentiles(d):
    import re
    from hearth_client.bench import run
    line = await run(4, 0.3, d.socket, 16)
    assert re.search(r"in-flight 4, .* \d+ calls, \d+ calls/s, p50 \d+ us, p99 \d+ us", line), line


@live("--max-frame", "1024")
async def test_oversize_or_unencodable_request_fails_alone(d):
    async with await hearth_client.connect(d.socket) as c:
        assert c.hello.max_frame == 1024
        with pytest.raises(HearthError) as info:
            await c.call("echo", "x" * 2000)
        assert info.value.code == -32005
        with pytest.raises(TypeError):
            await c.call("echo", object())
        assert c.in_flight == 0
        assert await c.call("echo", "still fine") == "still fine"


@live()
async def test_unencodable_handler_result_is_answered_internal_error(d):
    async with await hearth_client.connect(d.socket) as c:
        c.serve("editor/odd", lambda params: object())
        with pytest.raises(HearthError) as info:
            await c.call("ask", {"method": "editor/odd", "params": None})
        assert info.value.code == -32603
