"""Start on first use: :func:`connect_or_start` connects to hearthd and, when nothing answers
on the socket, starts one (detached, in a session of its own, with ``--idle-exit 10m`` and its
output appended to ``hearthd.log`` beside the socket), waits for it to answer, and connects. A
running hearthd of another build than the one this client would start (its ``$/hello``
``build_id``, docs/PROTOCOL.md §9.1 "Mixed versions") is asked to shut down and replaced,
unless replacement is turned off. This is the Python counterpart of the Rust client's
``Client::connect_or_start`` (client/src/start.rs), and interoperates with it.

One daemon results however many clients race: starting and replacing happen under the same
start lock as the Rust client's (an exclusive ``flock`` on ``<socket>.start``), each client
checks again for a daemon once it holds that lock, and the daemon's own lock file is the last
word (a second hearthd exits with "already running" and its client connects to the first).

This module also owns the build identity arithmetic (:func:`identity_hash`, the vectors of
conformance/build_id.json) and where the daemon binary is looked for (:func:`find_daemon`).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import subprocess
import threading
from typing import Mapping, Optional, Sequence

from .session import Client, connect
from .wire import socket_path

#: Names the daemon binary to start, before ``PATH`` is searched.
DAEMON_ENV = "HEARTHD"
#: Set to ``1``, :func:`connect_or_start` never starts a daemon (it is plain :func:`connect`).
NO_START_ENV = "HEARTH_NO_START"
#: Set to ``1``, a daemon of another build is kept rather than replaced.
NO_REPLACE_ENV = "HEARTH_NO_REPLACE"
#: Overrides the computed build id, on the daemon's side and the client's.
BUILD_ID_ENV = "HEARTH_BUILD_ID"
#: The ``--idle-exit`` a started daemon gets unless told otherwise.
DEFAULT_IDLE_EXIT = "10m"

_MASK = (1 << 64) - 1


class StartError(Exception):
    """A daemon could not be started (or replaced). ``kind`` says which case: ``not_found``,
    ``unsafe_folder``, ``file``, ``spawn``, ``exited``, ``not_ready``, ``stale_stays``; the
    message says what to do. ``socket``, ``log``, ``status`` and ``tail`` are set where they
    apply."""

    def __init__(self, kind: str, message: str, *, socket: Optional[str] = None,
                 log: Optional[str] = None, status: Optional[str] = None,
                 tail: Optional[str] = None, path: Optional[str] = None):
        super().__init__(message)
        self.kind, self.socket, self.log, self.status, self.tail, self.path = \
            kind, socket, log, status, tail, path


def identity_hash(size: int, mtime_sec: int, mtime_nsec: int, ino: int, dev: int) -> str:
    """16 lowercase hex digits of 64-bit FNV-1a over five unsigned 64-bit words, each as 8
    little-endian bytes: size, modification time (whole seconds, then the nanoseconds part),
    inode, device — ``hearth_protocol::build_id::identity_hash``."""
    h = 0xcbf29ce484222325
    for word in (size, mtime_sec, mtime_nsec, ino, dev):
        for byte in (word & _MASK).to_bytes(8, "little"):
            h = ((h ^ byte) * 0x100000001b3) & _MASK
    return f"{h:016x}"


def file_hash(path: str) -> str:
    """The hash part of a build id for the executable at ``path`` (one ``stat``); raises
    ``OSError`` if it cannot be inspected."""
    st = os.stat(path)
    # divmod rounds down, so the nanoseconds part is never negative: Rust's mtime/mtime_nsec.
    sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
    return identity_hash(st.st_size, sec, nsec, st.st_ino, st.st_dev)


def expected_build_id(daemon: str, override: Optional[str] = None) -> Optional[str]:
    """What a client expects of a daemon started from ``daemon``: ``override``
    (``$HEARTH_BUILD_ID``) when given and not empty, else its :func:`file_hash`; None when
    it cannot be inspected."""
    if override:
        return override
    try:
        return file_hash(daemon)
    except OSError:
        return None


def build_id_matches(announced: str, expected: str) -> bool:
    """Whether a daemon announcing ``announced`` is the build ``expected``: equal, or its part
    after the last ``+`` is."""
    return announced == expected or ("+" in announced and announced.rsplit("+", 1)[1] == expected)


def find_daemon(env: Optional[Mapping[str, str]] = None) -> str:
    """The daemon binary to start: ``$HEARTHD`` if set and not empty, else the first
    ``hearthd`` on ``PATH`` (an editor client has no folder of its own to look in). Raises a
    :class:`StartError` ``not_found`` that says what to do."""
    env = os.environ if env is None else env
    explicit = env.get(DAEMON_ENV, "")
    if explicit:
        return explicit
    for d in env.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(d, "hearthd")
        if d and os.path.isfile(candidate):
            return candidate
    raise StartError(
        "not_found",
        f"no hearthd to start: ${DAEMON_ENV} is not set and there is no hearthd on PATH; "
        f"install hearthd (cargo install --path daemon), set {DAEMON_ENV}=/path/to/hearthd, "
        "or pass daemon=")


def log_path(socket: str) -> str:
    """``hearthd.log`` in the socket's folder: where a started daemon's output goes."""
    return os.path.join(os.path.dirname(socket), "hearthd.log")


def start_lock_path(socket: str) -> str:
    """The start lock beside ``socket``, shared with the Rust client: ``<socket>.start``."""
    return socket + ".start"


def _nothing_answers(e: BaseException, socket: str) -> bool:
    """Whether a connect error means nothing serves the socket (so starting one may help)."""
    if isinstance(e, FileNotFoundError):
        return True
    if not isinstance(e, ConnectionRefusedError):
        return False
    # Linux refuses a connect to a file that is not a socket the same way: report that as is.
    try:
        return stat.S_ISSOCK(os.lstat(socket).st_mode)
    except FileNotFoundError:
        return True


def _lock_is_held(path: str) -> bool:
    """Whether a process holds the daemon lock at ``path`` (False when there is no file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


async def _answers(socket: str) -> bool:
    """Whether something accepts connections on ``socket`` right now."""
    try:
        _, w = await asyncio.open_unix_connection(socket)
    except OSError:
        return False
    w.close()
    return True


def _tail(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()][-3:]
    return " | ".join(lines) if lines else "(empty)"


async def connect_or_start(path: Optional[str] = None, *, client: str = "hearth_client.py",
                           protocol: int = 2, start: Optional[bool] = None,
                           daemon: Optional[str] = None,
                           idle_exit: Optional[str] = DEFAULT_IDLE_EXIT,
                           args: Sequence[str] = (), replace_stale: Optional[bool] = None,
                           build_id: Optional[str] = None, ready_timeout: float = 10.0,
                           env: Optional[Mapping[str, str]] = None) -> Client:
    """Connects like :func:`connect` and, when nothing answers on the socket, starts hearthd
    and connects to it; a running hearthd of another build is replaced (see the module docs).

    ``start=False`` or ``HEARTH_NO_START=1`` makes it exactly :func:`connect`. ``daemon`` is
    the binary (default :func:`find_daemon`); ``idle_exit`` its ``--idle-exit`` (None: none);
    ``args`` more arguments. ``replace_stale`` defaults to on unless ``HEARTH_NO_REPLACE=1``.
    ``build_id`` is the id expected of the daemon (default ``$HEARTH_BUILD_ID``, else the hash
    of the binary); a daemon started here gets ``HEARTH_BUILD_ID`` set to it when given.
    ``ready_timeout`` (seconds) bounds the wait for a started daemon and for a replaced one
    to go. ``env`` is where those variables are read (default ``os.environ``) and the
    environment of a started daemon.

    Raises what :func:`connect` raises for anything but "nothing answers" (permissions, a file
    that is not a socket, a refused handshake), else :class:`StartError`.
    """
    env = os.environ if env is None else env
    path = path or socket_path(env)
    if start is False or env.get(NO_START_ENV) == "1":
        return await connect(path, client=client, protocol=protocol)
    s = _Starter(path, client, protocol, daemon, idle_exit, args, replace_stale, build_id,
                 ready_timeout, env)
    c = await s.attempt()
    if c is not None:
        return c
    if s.stale is not None:
        await s.stale.close()
        s.stale = None
    lock = await s.lock()
    try:
        # Another client may have started or replaced the daemon while we waited.
        c = await s.attempt()
        if c is not None:
            return c
        if s.stale is not None:
            await s.replace(s.stale)
        s.spawn()
        return await s.wait_ready()
    finally:
        os.close(lock)  # releases the flock


class _Starter:
    """One attempt to start a daemon for one socket."""

    def __init__(self, socket, client, protocol, daemon, idle_exit, args, replace_stale,
                 build_id, ready_timeout, env):
        self.socket, self.client, self.protocol = socket, client, protocol
        self._daemon, self.idle_exit, self.args = daemon, idle_exit, list(args)
        self.replace_stale = env.get(NO_REPLACE_ENV) != "1" if replace_stale is None \
            else replace_stale
        self.build_id, self.ready_timeout, self.env = build_id, ready_timeout, env
        self.log = log_path(socket)
        self.stale: Optional[Client] = None
        self._expected: object = ...  # not computed yet
        self._proc: Optional[subprocess.Popen] = None
        self._log_start = 0
        self._replaced = False

    @property
    def daemon(self) -> str:
        """The binary to start, found once (``not_found`` only when one is needed)."""
        if self._daemon is None:
            self._daemon = find_daemon(self.env)
        return self._daemon

    @property
    def expected(self) -> Optional[str]:
        if self._expected is ...:
            override = self.build_id or self.env.get(BUILD_ID_ENV) or None
            if override:
                self._expected = override
            else:
                try:
                    self._expected = expected_build_id(self.daemon)
                except StartError:
                    self._expected = None  # no binary to start: nothing to compare against
        return self._expected  # type: ignore[return-value]

    def is_stale(self, c: Client) -> bool:
        """Whether ``c``'s daemon is a hearthd of another build that we may replace (§9.1)."""
        # Never over a version 1 connection: its hello has no build id to judge by.
        if not self.replace_stale or c.version < 2 or not c.hello.server.startswith("hearthd "):
            return False
        expected = self.expected
        if expected is None:
            return False
        if c.hello.build_id is None:
            return True  # a hearthd from before build ids is older than this client
        return not build_id_matches(c.hello.build_id, expected)

    async def attempt(self) -> Optional[Client]:
        """A connection to a daemon we keep, or None (nothing answers, or ``self.stale``)."""
        try:
            c = await connect(self.socket, client=self.client, protocol=self.protocol)
        except OSError as e:
            if _nothing_answers(e, self.socket):
                return None
            raise
        if self.is_stale(c):
            self.stale = c
            return None
        return c

    def _check_folder(self) -> None:
        """Checks (creating it owner-only if missing) the socket's folder as hearthd would."""
        d = os.path.dirname(self.socket) or "."
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            try:
                os.mkdir(d, 0o700)  # only the last component, as hearthd does
                os.chmod(d, 0o700)  # ours, just made: set exactly what the umask filtered
            except FileExistsError:
                pass
            except OSError as e:
                raise StartError("file", f"cannot create the socket folder {d}: {e.strerror}",
                                 path=d) from e
            st = os.lstat(d)
        # The daemon's rule and advice (hearth_transport::folder): never change that folder.
        uid = os.geteuid()
        elsewhere = "(HEARTH_SOCKET or the path argument)"

        def refuse(problem: str, fix: str):
            raise StartError("unsafe_folder",
                             f"hearthd would refuse the socket folder {d}: {problem}; {fix}",
                             path=d)
        if stat.S_ISLNK(st.st_mode):
            refuse("it is a symbolic link",
                   f"remove the link (rm {d}) or choose another path {elsewhere}")
        if not stat.S_ISDIR(st.st_mode):
            refuse("it is not a folder", f"choose another path {elsewhere}")
        if st.st_uid != uid:
            refuse(f"it is owned by uid {st.st_uid}, not by you (uid {uid})",
                   f"choose a folder of your own {elsewhere}")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            sub = os.path.join(d, f"hearth-{uid}", os.path.basename(self.socket))
            refuse(f"other users have access to it (mode {mode:o})",
                   f"use a folder of its own, which hearthd creates owner-only: "
                   f"HEARTH_SOCKET={sub} (or the path argument)")

    async def lock(self) -> int:
        """Takes the start lock (``flock`` on ``<socket>.start``, as the Rust client does),
        waiting (bounded) for a client that holds it. Returns the open descriptor."""
        self._check_folder()
        path = start_lock_path(self.socket)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StartError("file", f"cannot open the start lock {path}: {e.strerror}",
                             path=path) from e
        loop = asyncio.get_running_loop()
        # The holder is bounded by its own ready and replace waits.
        give_up = loop.time() + self.ready_timeout * 3
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if loop.time() >= give_up:
                        raise StartError("file", f"another client held the start lock {path} "
                                         "too long; is a hearthd start hanging?",
                                         path=path) from None
                except OSError as e:
                    raise StartError("file", f"cannot lock {path}: {e.strerror}",
                                     path=path) from e
                await asyncio.sleep(0.02)
        except BaseException:  # an error, or the caller's task cancelled while waiting
            os.close(fd)
            raise

    async def replace(self, stale: Client) -> None:
        """Asks a daemon of another build to shut down, and waits until nothing answers and it
        has let go of its lock."""
        found = stale.hello.build_id or "none"
        try:  # the answer may or may not arrive before the connection closes
            await asyncio.wait_for(stale.call("shutdown"), self.ready_timeout)
        except Exception:
            pass
        await stale.close()
        self._replaced = True
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.ready_timeout
        lock = self.socket + ".lock"
        while _lock_is_held(lock) or await _answers(self.socket):
            if loop.time() >= give_up:
                raise StartError(
                    "stale_stays",
                    f"the daemon on {self.socket} (build {found}) did not shut down within "
                    f"{self.ready_timeout}s to be replaced by build {self.expected}; stop it, "
                    f"or set {NO_REPLACE_ENV}=1 to keep it", socket=self.socket)
            await asyncio.sleep(0.02)

    def spawn(self) -> None:
        """Starts the daemon detached: its own session, no stdin, output appended to the log;
        a thread reaps it whenever it exits."""
        daemon = self.daemon
        try:
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StartError("file", f"cannot open the daemon log {self.log}: {e.strerror}",
                             path=self.log) from e
        try:
            self._log_start = os.fstat(fd).st_size
            env = {k: v for k, v in self.env.items() if k not in ("LISTEN_FDS", "LISTEN_PID")}
            if self.build_id is not None:
                env[BUILD_ID_ENV] = self.build_id
            argv = [daemon, "--socket", self.socket]
            if self.idle_exit is not None:
                argv += ["--idle-exit", self.idle_exit]
            argv += self.args
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                        start_new_session=True, env=env, close_fds=True)
            except OSError as e:
                raise StartError("spawn", f"cannot run {daemon}: {e.strerror or e}; install "
                                 f"hearthd or set {DAEMON_ENV}", path=daemon) from e
        finally:
            os.close(fd)
        threading.Thread(target=proc.wait, name="hearthd-reaper", daemon=True).start()
        self._proc = proc

    def _read_log(self, start: int) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    async def wait_ready(self) -> Client:
        """Waits (2 ms doubling to 50 ms) for the started daemon, or the one that won a race,
        to answer."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        pause = 0.002
        while True:
            try:
                return await connect(self.socket, client=self.client, protocol=self.protocol)
            except OSError as e:
                if not _nothing_answers(e, self.socket):
                    raise
            code = self._proc.returncode if self._proc is not None else None
            if code is not None:
                # A daemon that lost a race to another exits "already running": the winner
                # answers soon. Anything else is a failure to report.
                if "already running" not in self._read_log(self._log_start):
                    status = f"signal {-code}" if code < 0 else f"exit status {code}"
                    tail = _tail(self._read_log(0))
                    raise StartError(
                        "exited", f"hearthd exited ({status}) before answering on "
                        f"{self.socket}; its log ({self.log}) ends: {tail}",
                        socket=self.socket, log=self.log, status=status, tail=tail)
                if self._replaced and not os.path.exists(self.socket):
                    self.spawn()  # it lost to the replaced daemon's last moments: again
            if loop.time() - started >= self.ready_timeout:
                raise StartError("not_ready", f"no daemon answered on {self.socket} within "
                                 f"{self.ready_timeout}s; see {self.log}",
                                 socket=self.socket, log=self.log)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
