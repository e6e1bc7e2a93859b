"""Test support for the Python suites: a real hearthd on a temporary socket, a scripted fake
daemon, the conformance-vector loaders and the envelope "meaning" used by the vectors.

hearthd comes from ``HEARTHD`` (default ``target/debug/hearthd`` at the repository root). Each
daemon gets a fresh 0700 folder and is killed when its test ends; no default socket is
touched. Waits are on events (the daemon's "ready" log line, a connection, a frame); every
timeout is a failure guard, never a synchronisation.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import msgpack

from hearth_client.wire import FrameReader, decode_envelope

REPO = Path(__file__).resolve().parents[3]
CONFORMANCE = REPO / "conformance"
HEARTHD = os.path.abspath(os.environ.get("HEARTHD") or REPO / "target" / "debug" / "hearthd")
GUARD = 15.0
KINDS = ["request", "response", "notification", "cancel", "partial"]


def load(name: str) -> dict:
    return json.loads((CONFORMANCE / name).read_text())


def hexbytes(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def temp_dir() -> str:
    d = tempfile.mkdtemp(prefix="hearth-py-")
    os.chmod(d, 0o700)
    return d


def meaning(env) -> dict:
    """An envelope in the vectors' "expect" shape (see conformance/README.md)."""
    m = {"version": env.version, "kind": KINDS[env.kind]}
    if env.kind == 0:
        m.update(id=str(env.id), method=env.method, params=env.params)
        if env.opts is not None:
            m["opts"] = dict(env.opts)
    elif env.kind == 1:
        m.update(id=str(env.id), error=env.error, result=env.result)
    elif env.kind == 2:
        m.update(method=env.method, params=env.params)
    elif env.kind == 3:
        m["id"] = str(env.id)
    else:
        m.update(id=str(env.id), seq=env.seq, chunk=env.chunk)
    return m


def matches(got, want) -> bool:
    """Does ``got`` contain everything ``want`` names? (maps: subset; else: equal)"""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and matches(got[k], w)
                                             for k, w in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and \
            all(matches(g, w) for g, w in zip(got, want))
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    return got == want


def split_at(data: bytes, points) -> list:
    out, prev = [], 0
    for p in list(points) + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


def feeds(data: bytes, spec):
    n = len(data)
    if spec == "whole":
        yield [data]
    elif spec == "bytewise":
        yield [data[i:i + 1] for i in range(n)]
    elif spec == "every_single_split":
        for i in range(1, n):
            yield split_at(data, [i])
    elif spec == "every_double_split":
        for i in range(1, n):
            for j in range(i + 1, n):
                yield split_at(data, [i, j])
    elif isinstance(spec, list):
        yield split_at(data, spec)
    else:
        raise ValueError(f"unknown feed {spec!r}")


class Daemon:
    """hearthd on a fresh socket; ``await Daemon.start()``, then ``await d.kill()``."""

    def __init__(self, proc, dirname: str, socket: str):
        self.proc, self.dir, self.socket = proc, dirname, socket
        self.log: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> "Daemon":
        d = temp_dir()
        sock = os.path.join(d, "hearthd.sock")
        proc = await asyncio.create_subprocess_exec(
            HEARTHD, "--socket", sock, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "info"})
        self = cls(proc, d, sock)
        ready = asyncio.get_running_loop().create_future()
        self._drain = asyncio.create_task(self._read_log(ready))
        try:
            await asyncio.wait_for(ready, GUARD)
        except BaseException:
            await self.kill()
            raise
        return self

    async def _read_log(self, ready: asyncio.Future) -> None:
        # Keeps draining the daemon's log so it never blocks on a full pipe.
        async for line in self.proc.stdout:
            self.log.append(line.decode(errors="replace"))
            if "ready on" in self.log[-1] and not ready.done():
                ready.set_result(None)
        if not ready.done():
            ready.set_exception(RuntimeError("hearthd exited before ready:\n" + "".join(self.log)))

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self._drain
        shutil.rmtree(self.dir, ignore_errors=True)


def _frame(v) -> bytes:
    body = msgpack.packb(v, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class ScriptedPeer:
    """A fake daemon on a temporary socket that plays a scenario's ``script``."""

    def __init__(self) -> None:
        self.dir = temp_dir()
        self.socket = os.path.join(self.dir, "hearthd.sock")
        self._conns: asyncio.Queue = asyncio.Queue()

    async def listen(self) -> None:
        async def on_conn(r, w):
            await self._conns.put((r, w))
        self._server = await asyncio.start_unix_server(on_conn, self.socket)

    async def run(self, script: list) -> None:
        bound: dict = {}

        def subst(v):
            if isinstance(v, str) and v.startswith("$") and v[1:] in bound:
                return bound[v[1:]]
            if isinstance(v, list):
                return [subst(x) for x in v]
            return v

        r = w = None
        inbox: list = []
        reader = FrameReader()

        async def nxt():
            while not inbox:
                data = await r.read(65536)
                if not data:
                    return None
                inbox.extend(decode_envelope(v) for v in reader.feed(data))
            return inbox.pop(0)

        for step in script:
            op = step["op"]
            if op == "accept":
                r, w = await self._conns.get()
                inbox, reader = [], FrameReader()
            elif op == "recv":
                env = await nxt()
                assert env is not None, f"peer: EOF while expecting {step['expect']}"
                m = meaning(env)
                got = dict(m, id=int(m["id"]) if "id" in m else None,
                           error=m["error"]["code"] if m.get("error") else m.get("error"))
                assert matches(got, step["expect"]), f"peer: got {m}, expected {step['expect']}"
                if "bind" in step:
                    bound[step["bind"]] = env.id
            elif op == "recv_eof":
                env = await nxt()
                assert env is None, f"peer: expected EOF, got {meaning(env)}"
            elif op == "send":
                w.write(_frame(subst(step["msg"])))
            elif op == "send_batch":
                w.write(b"".join(_frame(subst(m)) for m in step["msgs"]))
            elif op == "send_hex":
                w.write(hexbytes(step["hex"]))
            elif op == "close":
                w.close()
            else:
                raise AssertionError(f"peer: unknown op {op}")

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ started daemons

def daemon_pids(socket: str) -> list:
    """The pids of the live hearthd processes serving ``socket`` (their command line has
    ``--socket <socket>``), from /proc. Zombies have no command line and are not counted."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        if "--socket" in argv:
            i = argv.index("--socket")
            if i + 1 < len(argv) and argv[i + 1] == socket and \
                    os.path.basename(argv[0]).startswith("hearthd"):
                pids.append(int(name))
    return pids


def kill_daemons(socket: str) -> None:
    """SIGKILLs every hearthd serving ``socket`` and waits (bounded) until none is left."""
    import signal
    import time
    give_up = time.monotonic() + GUARD
    while True:
        pids = daemon_pids(socket)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.monotonic() < give_up, f"hearthd {pids} on {socket} would not die"
        time.sleep(0.01)


def clean_env(**extra: str) -> dict:
    """The environment without the variables that change how clients start daemons."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEARTH_NO_START", "HEARTH_NO_REPLACE", "HEARTH_BUILD_ID",
                        "HEARTH_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
    env.update(extra)
    return env
