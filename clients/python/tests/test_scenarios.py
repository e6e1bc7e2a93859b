"""Runs every scenario of conformance/scenarios.json with the Python client: "hearthd" ones
against a real daemon started for the scenario, "scripted" ones against the fake daemon of
support.py playing the scenario's script. This file is the Python interpreter of the step
language described in conformance/README.md."""

import asyncio

import pytest

import hearth_client
from hearth_client import ConnectionLost, HearthError

from support import GUARD, Daemon, ScriptedPeer, load, matches

SCENARIOS = load("scenarios.json")["scenarios"]


class Aborted(Exception):
    pass


async def run_steps(steps, socket, daemon, needs):
    state = {"client": None}
    calls, served, notes, listened = {}, [], [], set()

    async def outcome(coro):
        try:
            return True, await coro
        except asyncio.CancelledError:
            return False, Aborted()
        except Exception as e:  # the scenario inspects it
            return False, e

    async def run(lst):
        for step in lst:
            op, where = step["op"], repr(step)
            c = state["client"]
            if op == "connect":
                c = state["client"] = await asyncio.wait_for(
                    hearth_client.connect(socket, client="conformance.py"), GUARD)
                assert c.hello.protocol >= needs, \
                    f"this scenario needs a version {needs} hearthd; {c.hello.server} " \
                    f"speaks {c.hello.protocol}"
                c.on_notification(None, lambda m, p: notes.append((m, p, m in listened)))
                exp = step.get("expect", {})
                if "version" in exp:
                    assert c.version == exp["version"]
                for k in exp.get("hello_keys", []):
                    assert k in c.hello.raw, k
            elif op == "call":
                # The request is on the wire when this step ends; the answer is awaited by a
                # task, which "abort" cancels (the client then sends [v,3,id]).
                dl = step.get("deadline_ms")
                kw = dict(deadline=None if dl is None else dl / 1000, supersede=step.get("supersede"))
                if step.get("stream"):
                    s = c.stream(step["method"], step.get("params"), **kw)
                    started = await outcome(s.start())

                    async def streamed(s=s):
                        chunks = [x async for x in s]
                        return {"chunks": chunks, "dropped": s.dropped, "result": s.result}
                    coro = streamed()
                else:
                    started = await outcome(c.send(step["method"], step.get("params"), **kw))

                    async def plain(sent=started[1]):
                        return {"result": await sent}
                    coro = plain()
                if not started[0]:  # refused before sending (the connection is gone)
                    coro.close()
                    done = asyncio.get_running_loop().create_future()
                    done.set_result(started)
                    calls[step["as"]] = (None, done)
                    continue
                task = asyncio.ensure_future(coro)
                # "abort" cancels the call itself: its awaiting task may not have run yet.
                aborter = s.aclose if step.get("stream") else started[1].cancel
                calls[step["as"]] = (aborter, asyncio.ensure_future(outcome(task)))
            elif op == "abort":
                abort = calls[step["call"]][0]
                if abort is not None:
                    r = abort()
                    if asyncio.iscoroutine(r):
                        await r
            elif op == "await":
                ok, v = await asyncio.wait_for(asyncio.shield(calls[step["call"]][1]), GUARD)
                e = step["expect"]
                if "result" in e or "chunks" in e or "result_subset" in e:
                    assert ok, f"{where}: failed with {v!r}"
                    if "result" in e:
                        assert v["result"] == e["result"], where
                    if "result_subset" in e:
                        assert matches(v["result"], e["result_subset"]), f"{where}: {v}"
                    if "chunks" in e:
                        assert v["chunks"] == e["chunks"], where
                    if "dropped" in e:
                        assert v["dropped"] == e["dropped"], where
                else:
                    assert not ok, f"{where}: succeeded with {v!r}"
                    if "error" in e:
                        assert isinstance(v, HearthError) and v.code == e["error"], f"{where}: {v!r}"
                        if "message" in e:
                            assert v.message == e["message"]
                        if "data" in e:
                            assert v.data == e["data"]
                    if e.get("aborted"):
                        assert isinstance(v, Aborted), f"{where}: {v!r}"
                    if e.get("lost"):
                        assert isinstance(v, ConnectionLost), f"{where}: {v!r}"
                    if "fatal_code" in e:
                        assert v.fatal_code == e["fatal_code"], where
            elif op == "await_idle":
                await asyncio.wait_for(c.idle(), GUARD)
                assert c.in_flight == 0
            elif op == "serve":
                def handler(params, step=step):
                    served.append((step["method"], params))
                    if step.get("hang"):
                        return asyncio.get_running_loop().create_future()  # never resolved
                    if "error" in step:
                        raise HearthError(step["error"]["code"], step["error"]["message"])
                    return step.get("result")
                c.serve(step["method"], handler)
            elif op == "expect_served":
                assert any(m == step["method"] and matches(p, step["params"]) for m, p in served), \
                    f"{where}: {served}"
            elif op == "listen":
                listened.add(step["method"])
            elif op == "expect_notified":
                assert any(m == step["method"] and lis and matches(p, step["params"])
                           for m, p, lis in notes), f"{where}: {notes}"
            elif op == "expect_notified_any":
                assert any(m == step["method"] and matches(p, step["params"])
                           for m, p, _ in notes), f"{where}: {notes}"
            elif op == "await_closed":
                await asyncio.wait_for(c.wait_closed(), GUARD)
            elif op == "kill_daemon":
                await daemon.kill()
            elif op == "close":
                await c.close()
            elif op == "repeat":
                for _ in range(step["times"]):
                    await run(step["steps"])
            else:
                raise AssertionError(f"unknown step {where}")

    try:
        await run(steps)
    finally:
        if state["client"] is not None:
            await state["client"].close()


async def run_scenario(sc):
    if sc["peer"] == "hearthd":
        daemon = await Daemon.start(*sc.get("daemon_args", []))
        try:
            await run_steps(sc["steps"], daemon.socket, daemon, sc.get("needs", 1))
        finally:
            await daemon.kill()
    else:
        peer = ScriptedPeer()
        await peer.listen()
        try:
            script = asyncio.ensure_future(peer.run(sc["script"]))
            try:
                await run_steps(sc["steps"], peer.socket, None, 1)
            except BaseException:
                script.cancel()
                raise
            await asyncio.wait_for(script, GUARD)
        finally:
            await peer.stop()


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: f"{s['name']}-{s['peer']}")
def test_scenario(sc):
    asyncio.run(run_scenario(sc))


def test_every_scenario_has_a_known_peer():
    assert len(SCENARIOS) >= 15
    assert all(s["peer"] in ("hearthd", "scripted") for s in SCENARIOS)
