"""The wire layer of the Python client: socket path rule, framing and envelopes, no I/O.

It owns the default socket path (docs/PROTOCOL.md §3.1), the frame reader that cuts
length-prefixed frames out of one growable buffer and checks each header against
``max_frame`` before buffering the body (§4), the envelope decoder that turns one MessagePack
body into an :class:`Envelope` (§6, §15.1, and ``$/fatal`` of any version, §9), and the
encoders for what a client sends. It never touches a socket or the event loop; the session
(:mod:`hearth_client.session`) drives it, and the conformance tests feed it bytes directly.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

import msgpack

DEFAULT_MAX_FRAME = 8 * 1024 * 1024
HEADER = struct.Struct(">I")

REQUEST, RESPONSE, NOTIFICATION, CANCEL, PARTIAL = 0, 1, 2, 3, 4
KIND_NAMES = {REQUEST: "request", RESPONSE: "response", NOTIFICATION: "notification",
              CANCEL: "cancel", PARTIAL: "partial"}


def socket_path(env: Optional[dict] = None) -> str:
    """The daemon's socket path by the rule of §3.1 (``env`` defaults to ``os.environ``)."""
    env = os.environ if env is None else env
    explicit = env.get("HEARTH_SOCKET", "")
    if explicit:
        return explicit
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "hearth", "hearthd.sock")
    return f"/tmp/hearth-{os.getuid()}/hearthd.sock"


class FrameError(Exception):
    """A frame header that can never be valid; the stream is out of step after it."""

    kind = "frame_error"


class FrameTooLarge(FrameError):
    kind = "frame_too_large"

    def __init__(self, length: int, max_frame: int):
        super().__init__(f"frame of {length} bytes announced, above max_frame {max_frame}")
        self.length, self.max_frame = length, max_frame


class EmptyFrame(FrameError):
    kind = "empty_frame"

    def __init__(self) -> None:
        super().__init__("frame header announced 0 bytes")


class EnvelopeError(Exception):
    """A well-framed body that is not a message we can use (not MessagePack, not an envelope)."""


class FrameReader:
    """Cuts frames out of a byte stream fed in arbitrary pieces.

    One ``bytearray`` holds unread bytes; ``start`` marks how far it has been consumed, and the
    consumed prefix is dropped only when it is more than half the buffer, so a read that holds
    many frames costs one compaction, not one per frame. Bodies are decoded straight from a
    ``memoryview`` of the buffer, never copied into a buffer of their own.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._start = 0

    def buffered(self) -> int:
        """Bytes held and not yet consumed (a header counts until its body is complete)."""
        return len(self._buf) - self._start

    def feed(self, data: bytes) -> list:
        """Appends ``data`` and returns the decoded MessagePack value of every whole frame.

        Raises :class:`FrameError` for a zero or oversize header (checked as soon as the four
        header bytes are present, before the body is waited for) and :class:`EnvelopeError`
        for a body that is not exactly one MessagePack value (the stream stays in step).
        """
        out = list(self.frames(data))
        for v in out:
            if isinstance(v, EnvelopeError):
                raise v
        return out

    def frames(self, data: bytes):
        """Like :meth:`feed`, as a generator: yields each value as soon as it is decoded, and
        an :class:`EnvelopeError` instance (not raised) for a body that does not decode."""
        if self._start and self._start * 2 >= len(self._buf):
            del self._buf[: self._start]
            self._start = 0
        self._buf += data
        while True:
            avail = len(self._buf) - self._start
            if avail < 4:
                return
            (n,) = HEADER.unpack_from(self._buf, self._start)
            if n == 0:
                raise EmptyFrame()
            if n > self.max_frame:
                raise FrameTooLarge(n, self.max_frame)
            if avail < 4 + n:
                return
            begin = self._start + 4
            self._start = begin + n
            with memoryview(self._buf) as mv:
                body = mv[begin: begin + n]
                try:
                    value = unpack(body)
                except EnvelopeError as e:
                    value = e
                finally:
                    body.release()
            yield value


def unpack(body) -> Any:
    """Decodes exactly one MessagePack value (trailing bytes are an error)."""
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except (ValueError, msgpack.UnpackException, TypeError) as e:
        raise EnvelopeError(f"frame body is not one MessagePack value: {e}") from e


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


@dataclass
class Envelope:
    """One decoded message. Fields a kind does not have stay ``None``."""

    version: int
    kind: int
    id: Optional[int] = None
    method: Optional[str] = None
    params: Any = None
    opts: Optional[dict] = None
    error: Optional[dict] = None
    result: Any = None
    seq: Optional[int] = None
    chunk: Any = None
    raw: list = field(default_factory=list, repr=False)

    @property
    def is_fatal(self) -> bool:
        return self.kind == NOTIFICATION and self.method == "$/fatal"


_LENGTHS = {REQUEST: (5, 6), RESPONSE: (5,), NOTIFICATION: (4,), CANCEL: (3,), PARTIAL: (5,)}


def decode_envelope(v: Any) -> Envelope:
    """Classifies one decoded body. ``$/fatal`` is recognised in an envelope of any version
    (its shape is frozen, §9); anything else must be version 1 or 2."""
    if not isinstance(v, list) or len(v) < 3:
        raise EnvelopeError("a message is an array of at least 3 elements")
    version, kind = v[0], v[1]
    if not _is_uint(version) or not _is_uint(kind):
        raise EnvelopeError("version and kind must be unsigned integers")
    if version not in (1, 2):
        if kind == NOTIFICATION and len(v) == 4 and v[2] == "$/fatal":
            return Envelope(version, kind, method="$/fatal", params=v[3], raw=v)
        raise EnvelopeError(f"unsupported protocol version {version}")
    if kind not in _LENGTHS or (kind == PARTIAL and version < 2):
        raise EnvelopeError(f"unknown kind {kind} in version {version}")
    if len(v) not in _LENGTHS[kind] or (kind == REQUEST and len(v) == 6 and version < 2):
        raise EnvelopeError(f"wrong element count {len(v)} for a {KIND_NAMES[kind]}")
    if kind == NOTIFICATION:
        if not isinstance(v[2], str):
            raise EnvelopeError("method must be a string")
        return Envelope(version, kind, method=v[2], params=v[3], raw=v)
    if not _is_uint(v[2]):
        raise EnvelopeError("id must be an unsigned integer")
    if kind == CANCEL:
        return Envelope(version, kind, id=v[2], raw=v)
    if kind == REQUEST:
        if not isinstance(v[3], str):
            raise EnvelopeError("method must be a string")
        opts = None
        if len(v) == 6:
            if not isinstance(v[5], dict):
                raise EnvelopeError("opts must be a map")
            opts = {"deadline_ms": v[5].get("deadline_ms"), "supersede": v[5].get("supersede"),
                    "stream": bool(v[5].get("stream", False))}
        return Envelope(version, kind, id=v[2], method=v[3], params=v[4], opts=opts, raw=v)
    if kind == PARTIAL:
        if not _is_uint(v[3]):
            raise EnvelopeError("seq must be an unsigned integer")
        return Envelope(version, kind, id=v[2], seq=v[3], chunk=v[4], raw=v)
    # response
    err = v[3]
    if err is not None:
        if not isinstance(err, dict):
            raise EnvelopeError("error must be nil or a map")
        code, message = err.get("code"), err.get("message")
        if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
            raise EnvelopeError("error map needs an integer code and a string message")
        err = {"code": code, "message": message, **({"data": err["data"]} if "data" in err else {})}
        return Envelope(version, kind, id=v[2], error=err, result=None, raw=v)
    return Envelope(version, kind, id=v[2], error=None, result=v[4], raw=v)


def _frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def _pack(v: Any) -> bytes:
    return msgpack.packb(v, use_bin_type=True)


def encode_request(version: int, id_: int, method: str, params: Any,
                   opts: Optional[dict] = None) -> bytes:
    env = [version, REQUEST, id_, method, params]
    if opts:
        env.append(opts)
    return _frame(_pack(env))


def encode_response(version: int, id_: int, result: Any = None,
                    error: Optional[dict] = None) -> bytes:
    return _frame(_pack([version, RESPONSE, id_, error, None if error else result]))


def encode_notification(version: int, method: str, params: Any) -> bytes:
    return _frame(_pack([version, NOTIFICATION, method, params]))


def encode_cancel(version: int, id_: int) -> bytes:
    return _frame(_pack([version, CANCEL, id_]))


@dataclass
class Hello:
    """The ``$/hello`` result (§9.1), with the documented defaults for missing keys."""

    protocol: int
    server: str
    build: str = ""
    #: Which build of the daemon this is (§9.1 ``build_id``); None from older daemons.
    build_id: Optional[str] = None
    methods: list = field(default_factory=list)
    max_frame: int = DEFAULT_MAX_FRAME
    max_in_flight: int = 1024
    max_connections: int = 0
    max_depth: int = 0
    supported: list = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, r: Any) -> "Hello":
        if not isinstance(r, dict):
            raise EnvelopeError("$/hello result must be a map")
        limits = r.get("limits") or {}
        return cls(protocol=int(r.get("protocol", 1)), server=str(r.get("server", "")),
                   build=str(r.get("build", "")),
                   build_id=r["build_id"] if isinstance(r.get("build_id"), str) else None,
                   methods=list(r.get("methods", [])),
                   max_frame=int(limits.get("max_frame", DEFAULT_MAX_FRAME)),
                   max_in_flight=int(limits.get("max_in_flight", 1024)),
                   max_connections=int(limits.get("max_connections", 0)),
                   max_depth=int(limits.get("max_depth", 0)),
                   supported=list(r.get("supported", [])), raw=r)
