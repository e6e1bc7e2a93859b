"""Start on first use (:func:`hearth_client.connect_or_start`) against a real hearthd: a start
from nothing, 20 clients starting at the same moment (tasks, threads, processes: one daemon
serves them all), failing starts, the opt-outs, errors that are not "nothing answers", an
unsafe folder, replacing a daemon of another build and keeping it, and the build id vectors
of conformance/build_id.json. Every daemon a test starts is killed at its end, found by its
command line (``--socket <the test's socket>``)."""

import asyncio
import os
import shutil
import subprocess
import sys
import threading

import pytest

import hearth_client
from hearth_client import (StartError, build_id_matches, connect_or_start,
                           connect_or_start_sync, expected_build_id, file_hash, find_daemon,
                           identity_hash, log_path, start_lock_path)

from support import GUARD, HEARTHD, clean_env, daemon_pids, kill_daemons, load, temp_dir


@pytest.fixture
def sock():
    """A socket path in a fresh 0700 folder; every daemon on it is killed afterwards."""
    d = temp_dir()
    path = os.path.join(d, "hearthd.sock")
    try:
        yield path
    finally:
        kill_daemons(path)
        shutil.rmtree(d, ignore_errors=True)


def opts(**more):
    return dict({"daemon": HEARTHD, "env": clean_env()}, **more)


def run(coro):
    async def main():
        return await asyncio.wait_for(coro, GUARD * 2)
    return asyncio.run(main())


def test_build_id_vectors():
    v = load("build_id.json")
    assert v["format"] == 1
    ran = 0
    for c in v["cases"]:
        got = identity_hash(int(c["size"]), int(c["mtime_sec"]), int(c["mtime_nsec"]),
                            int(c["ino"]), int(c["dev"]))
        assert got == c["hash"], c["name"]
        ran += 1
    assert ran == 6, "every vector ran"


def test_build_id_matching():
    assert build_id_matches("abc", "abc")
    assert build_id_matches("0.1.0+9ec04cbaa66ef9a9", "9ec04cbaa66ef9a9")
    assert build_id_matches("1.0+rc+9ec04cbaa66ef9a9", "9ec04cbaa66ef9a9")
    assert not build_id_matches("0.1.0+9ec04cbaa66ef9a9", "0.1.0")
    assert not build_id_matches("old", "new")


def test_expected_build_id_is_the_override_else_the_files_hash(tmp_path):
    exe = tmp_path / "hearthd"
    exe.write_bytes(b"one")
    st = os.stat(exe)
    want = identity_hash(st.st_size, st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9,
                         st.st_ino, st.st_dev)
    assert file_hash(str(exe)) == want == expected_build_id(str(exe))
    assert expected_build_id(str(exe), "test-old") == "test-old"
    assert expected_build_id(str(tmp_path / "missing")) is None
    exe.write_bytes(b"a rebuilt binary")
    assert file_hash(str(exe)) != want, "a rewrite changes the size"


def test_the_daemon_is_found_by_env_then_on_path(tmp_path):
    assert find_daemon({"HEARTHD": "/x/hearthd", "PATH": str(tmp_path)}) == "/x/hearthd"
    with pytest.raises(StartError) as e:
        find_daemon({"HEARTHD": "", "PATH": str(tmp_path)})
    assert e.value.kind == "not_found" and "HEARTHD" in str(e.value)
    (tmp_path / "hearthd").write_bytes(b"")
    assert find_daemon({"PATH": f"/nonexistent:{tmp_path}"}) == str(tmp_path / "hearthd")
    assert log_path("/run/u/hearth/hearthd.sock") == "/run/u/hearth/hearthd.log"
    assert start_lock_path("/run/u/hearth/hearthd.sock") == "/run/u/hearth/hearthd.sock.start"


def test_start_from_nothing(sock):
    socket = os.path.join(os.path.dirname(sock), "sub", "hearthd.sock")  # no folder yet
    try:
        async def main():
            c = await connect_or_start(socket, **opts())
            assert c.version == 2 and c.hello.server.startswith("hearthd ")
            assert await c.call("echo", {"hi": 1}) == {"hi": 1}
            again = await connect_or_start(socket, **opts())  # the same build: kept
            await again.close()
            await c.close()
        run(main())
        assert os.stat(os.path.dirname(socket)).st_mode & 0o777 == 0o700
        assert os.stat(log_path(socket)).st_mode & 0o777 == 0o600
        assert os.stat(start_lock_path(socket)).st_mode & 0o777 == 0o600
        pids = daemon_pids(socket)
        assert len(pids) == 1
        with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
            argv = f.read().decode().split("\0")
        assert argv[1:5] == ["--socket", socket, "--idle-exit", "10m"]
        assert os.getsid(pids[0]) != os.getsid(0), "detached: a session of its own"
        with open(log_path(socket)) as f:
            assert f.read().count("ready on") == 1
    finally:
        kill_daemons(socket)


def test_twenty_tasks_starting_at_once_share_one_daemon(sock):
    async def main():
        # return_exceptions: a failure must not leave other starts running past the cleanup.
        got = await asyncio.gather(*(connect_or_start(sock, **opts()) for _ in range(20)),
                                   return_exceptions=True)
        clients = [c for c in got if not isinstance(c, BaseException)]
        errors = [e for e in got if isinstance(e, BaseException)]
        if errors:
            for c in clients:
                await c.close()
        assert errors == []
        stats = await clients[0].call("$/stats")
        assert stats["connections"] == 20
        assert len(daemon_pids(sock)) == 1
        for c in clients:
            await c.close()
    run(main())
    with open(log_path(sock)) as f:
        assert f.read().count("ready on") == 1


def test_twenty_threads_starting_at_once_share_one_daemon(sock):
    barrier = threading.Barrier(20)
    out, errs = [], []

    def one():
        try:
            barrier.wait(GUARD)
            out.append(connect_or_start_sync(sock, **opts()))
        except BaseException as e:  # noqa: BLE001 - reported below
            errs.append(e)
    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GUARD * 2)
    try:
        assert not errs, errs
        assert len(out) == 20
        assert out[0].call("$/stats", timeout=GUARD)["connections"] == 20
        assert len(daemon_pids(sock)) == 1
    finally:
        for c in out:
            c.close()


def test_processes_starting_at_once_share_one_daemon(sock):
    # Separate processes race through the start lock (flock), as Rust clients do.
    code = ("import sys, hearth_client as h; c = h.connect_or_start_sync(sys.argv[1], "
            "daemon=sys.argv[2]); print(c.hello.server); c.close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, sock, HEARTHD], env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    for p in procs:
        out, err = p.communicate(timeout=GUARD * 2)
        assert p.returncode == 0, err
        assert out.startswith("hearthd "), out
    assert len(daemon_pids(sock)) == 1
    with open(log_path(sock)) as f:
        assert f.read().count("ready on") == 1


def test_a_daemon_that_exits_at_once_gives_the_documented_error(sock):
    with pytest.raises(StartError) as e:
        run(connect_or_start(sock, **opts(daemon="/bin/false")))
    err = e.value
    assert err.kind == "exited" and err.status == "exit status 1"
    assert sock in str(err) and log_path(sock) in str(err)


def test_a_missing_binary_is_named(sock):
    missing = os.path.join(os.path.dirname(sock), "no-such-hearthd")
    with pytest.raises(StartError) as e:
        run(connect_or_start(sock, **opts(daemon=missing)))
    assert e.value.kind == "spawn" and missing in str(e.value)
    with pytest.raises(StartError) as e:
        run(connect_or_start(sock, env=clean_env(HEARTHD="", PATH=os.path.dirname(sock))))
    assert e.value.kind == "not_found"


def test_no_start_fails_like_connect(sock):
    with pytest.raises(FileNotFoundError):
        run(connect_or_start(sock, **opts(env=clean_env(HEARTH_NO_START="1"))))
    with pytest.raises(FileNotFoundError):
        run(connect_or_start(sock, **opts(start=False)))
    with pytest.raises(FileNotFoundError):
        hearth_client.connect_sync(sock)
    assert not os.path.exists(log_path(sock)), "nothing was started"
    assert daemon_pids(sock) == []


def test_a_file_that_is_not_a_socket_is_reported_as_it_is(sock):
    with open(sock, "w") as f:
        f.write("not a socket")
    with pytest.raises(ConnectionRefusedError):
        run(connect_or_start(sock, **opts()))
    assert not os.path.exists(log_path(sock)), "nothing was started"


def test_a_folder_hearthd_would_refuse_is_refused_with_advice(sock):
    shared = os.path.join(os.path.dirname(sock), "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    with pytest.raises(StartError) as e:
        run(connect_or_start(os.path.join(shared, "hearthd.sock"), **opts()))
    assert e.value.kind == "unsafe_folder"
    assert os.path.join(shared, f"hearth-{os.getuid()}") in str(e.value)
    assert os.stat(shared).st_mode & 0o777 == 0o777, "an existing folder is never changed"
    link = os.path.join(os.path.dirname(sock), "link")
    os.symlink(os.path.dirname(sock), link)
    with pytest.raises(StartError) as e:
        run(connect_or_start(os.path.join(link, "hearthd.sock"), **opts()))
    assert e.value.kind == "unsafe_folder" and "symbolic link" in str(e.value)
    assert not os.path.exists(start_lock_path(sock)) and not os.path.exists(log_path(sock)), \
        "nothing was made"


def test_a_stale_daemon_is_replaced_and_no_replace_keeps_it(sock):
    async def main():
        old = await connect_or_start(sock, **opts(build_id="old"))
        assert old.hello.build_id == "old"
        [old_pid] = daemon_pids(sock)

        kept = await connect_or_start(sock, **opts(build_id="new",
                                                   env=clean_env(HEARTH_NO_REPLACE="1")))
        assert kept.hello.build_id == "old"
        await kept.close()
        kept = await connect_or_start(sock, **opts(build_id="new", replace_stale=False))
        assert kept.hello.build_id == "old"
        await kept.close()
        v1 = await connect_or_start(sock, **opts(build_id="new", protocol=1))
        assert v1.version == 1
        await v1.close()
        assert daemon_pids(sock) == [old_pid]

        fresh = await connect_or_start(sock, **opts(build_id="new"))
        assert fresh.hello.build_id == "new"
        await old.wait_closed()  # the old daemon shut down, ending our connection to it
        pids = daemon_pids(sock)
        assert len(pids) == 1 and pids[0] != old_pid
        await fresh.close()
    run(main())


async def fake_daemon(socket: str, hello: dict):
    """A fake daemon that answers ``$/hello`` with ``hello`` (no build_id) and, asked to
    ``shutdown``, answers and stops listening: stands in for a hearthd from before build ids.
    Returns ``(server, shut)``; ``shut`` is set once it was asked to go."""
    import msgpack
    from hearth_client.wire import FrameReader, decode_envelope
    shut = asyncio.Event()
    writers = []

    def frame(v) -> bytes:
        body = msgpack.packb(v, use_bin_type=True)
        return len(body).to_bytes(4, "big") + body

    async def on_conn(r, w):
        writers.append(w)
        reader = FrameReader()
        while data := await r.read(65536):
            for v in reader.feed(data):
                env = decode_envelope(v)
                if env.kind != 0:
                    continue
                if env.method == "$/hello":
                    w.write(frame([env.version, 1, env.id, None, hello]))
                elif env.method == "shutdown":
                    w.write(frame([env.version, 1, env.id, None, None]))
                    server.close()
                    os.unlink(socket)
                    for x in writers:
                        x.close()
                    shut.set()
                    return
                else:
                    w.write(frame([env.version, 1, env.id, {"code": -32601, "message": "no"},
                                   None]))
    server = await asyncio.start_unix_server(on_conn, socket)
    return server, shut


def test_a_hearthd_without_build_id_is_replaced_and_another_server_never(sock):
    async def main():
        old, shut = await fake_daemon(sock, {"protocol": 2, "server": "hearthd 0.0.1",
                                             "supported": [1, 2]})
        c = await connect_or_start(sock, **opts())
        assert shut.is_set(), "it was asked to go"
        assert c.hello.build_id is not None, "connected to a real hearthd"
        assert len(daemon_pids(sock)) == 1
        await c.close()
        kill_daemons(sock)
        os.unlink(sock)  # a killed daemon leaves its socket file

        other, _ = await fake_daemon(sock, {"protocol": 2, "server": "not-hearthd 9",
                                            "supported": [2]})
        try:
            d = await connect_or_start(sock, **opts(build_id="new"))
            assert d.hello.server == "not-hearthd 9"
            await d.close()
            assert daemon_pids(sock) == []
        finally:
            other.close()
    run(main())


def test_ten_clients_of_a_new_build_at_once_replace_the_old_daemon_once(sock):
    async def main():
        old = await connect_or_start(sock, **opts(build_id="old"))
        [old_pid] = daemon_pids(sock)
        got = await asyncio.gather(*(connect_or_start(sock, **opts(build_id="new"))
                                     for _ in range(10)), return_exceptions=True)
        assert [e for e in got if isinstance(e, BaseException)] == []
        fresh = got
        assert {c.hello.build_id for c in fresh} == {"new"}
        await old.wait_closed()
        pids = daemon_pids(sock)
        assert len(pids) == 1 and pids[0] != old_pid
        assert (await fresh[0].call("$/stats"))["connections"] == 10
        for c in fresh:
            await c.close()
    run(main())
    with open(log_path(sock)) as f:
        assert f.read().count("ready on") == 2


def test_without_a_path_the_socket_follows_hearth_socket_of_env(sock):
    env = clean_env(HEARTH_SOCKET=sock)

    async def main():
        with pytest.raises(FileNotFoundError):
            await connect_or_start(daemon=HEARTHD, env=dict(env, HEARTH_NO_START="1"))
        c = await connect_or_start(daemon=HEARTHD, env=env)
        assert c.path == sock
        assert len(daemon_pids(sock)) == 1
        await c.close()
    run(main())


def _open_fds_on(path: str) -> int:
    """How many of this process's descriptors are open on ``path``."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:
            pass
    return n


def test_a_client_waiting_for_the_start_lock_gives_up_when_cancelled(sock):
    import fcntl
    lock = start_lock_path(sock)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another client is starting

    async def main():
        task = asyncio.ensure_future(connect_or_start(sock, **opts()))
        # Wait (bounded) until it waits for the lock: its own descriptor on the lock file.
        for _ in range(2000):
            if task.done() or _open_fds_on(lock) == 2:
                break
            await asyncio.sleep(0.005)
        assert not task.done() and _open_fds_on(lock) == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    try:
        run(main())
        assert _open_fds_on(lock) == 1, "its descriptor on the lock file was closed"
        assert daemon_pids(sock) == [], "nothing was started while another held the lock"
    finally:
        os.close(fd)
