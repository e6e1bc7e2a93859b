"""The exceptions a hearth call can raise, and nothing else.

:class:`HearthError` is an error response from the daemon (code, message, data), with
subclasses for the codes a caller usually treats specially: superseded (-32801), deadline
exceeded (-32002) and cancelled (-32800). :class:`ConnectionLost` means the connection ended
(EOF, ``$/fatal``, a broken frame) with the call unanswered; every pending call gets it at
once. Frame-level errors of the reader live in :mod:`hearth_client.wire`.
"""

from __future__ import annotations

from typing import Any, Optional

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
SUPERSEDED = -32801
SERVER_BUSY = -32001
DEADLINE_EXCEEDED = -32002
SHUTTING_DOWN = -32003
UNSUPPORTED_VERSION = -32004
FRAME_TOO_LARGE = -32005


class HearthError(Exception):
    """An error answer: ``code``, ``message`` and optional ``data`` as the daemon sent them."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} ({code})")
        self.code, self.message, self.data = code, message, data

    @property
    def is_superseded(self) -> bool:
        return self.code == SUPERSEDED

    @property
    def is_deadline(self) -> bool:
        return self.code == DEADLINE_EXCEEDED

    @property
    def is_cancelled(self) -> bool:
        return self.code == REQUEST_CANCELLED

    @staticmethod
    def from_wire(err: dict) -> "HearthError":
        code = err.get("code")
        cls = _BY_CODE.get(code, HearthError)
        return cls(code, err.get("message", ""), err.get("data"))


class Superseded(HearthError):
    """-32801: a newer call with the same supersede key replaced this one."""


class DeadlineExceeded(HearthError):
    """-32002: the call's deadline passed before it finished."""


class RequestCancelled(HearthError):
    """-32800: the daemon stopped the call because of a cancel."""


_BY_CODE = {SUPERSEDED: Superseded, DEADLINE_EXCEEDED: DeadlineExceeded,
            REQUEST_CANCELLED: RequestCancelled}


class ConnectionLost(ConnectionError):
    """The connection ended before the call was answered.

    ``fatal_code``/``fatal_message`` hold the daemon's ``$/fatal`` if it sent one;
    ``supported`` the versions it listed.
    """

    def __init__(self, reason: str, fatal_code: Optional[int] = None,
                 fatal_message: Optional[str] = None, supported: Optional[list] = None):
        super().__init__(reason)
        self.reason = reason
        self.fatal_code, self.fatal_message = fatal_code, fatal_message
        self.supported = supported or []
