"""hearth_client: an asyncio client for hearthd (docs/PROTOCOL.md, versions 1 and 2).

This package file only gathers the public names. The layers live in their own modules:
:mod:`~hearth_client.wire` (path rule, framing, envelopes; no I/O), :mod:`~hearth_client.session`
(the asyncio connection), :mod:`~hearth_client.sync` (a blocking wrapper for scripts),
:mod:`~hearth_client.errors` (exceptions) and :mod:`~hearth_client.bench` (a load mode).

    async with await hearth_client.connect() as c:
        print(await c.call("echo", {"hi": 1}, deadline=0.5))
"""

from .errors import (ConnectionLost, DeadlineExceeded, HearthError, RequestCancelled,
                     Superseded)
from .session import Client, PendingCall, Stream, connect
from .sync import SyncClient, connect_sync
from .wire import DEFAULT_MAX_FRAME, FrameReader, Hello, socket_path

__all__ = ["Client", "ConnectionLost", "DeadlineExceeded", "DEFAULT_MAX_FRAME", "FrameReader",
           "HearthError", "Hello", "PendingCall", "RequestCancelled", "Stream", "Superseded", "SyncClient",
           "connect", "connect_sync", "socket_path"]
__version__ = "0.1.0"
