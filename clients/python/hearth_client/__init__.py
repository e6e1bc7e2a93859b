"""hearth_client: an asyncio client for hearthd (docs/PROTOCOL.md, versions 1 and 2).

This package file only gathers the public names. The layers live in their own modules:
:mod:`~hearth_client.wire` (path rule, framing, envelopes; no I/O), :mod:`~hearth_client.session`
(the asyncio connection), :mod:`~hearth_client.start` (starting hearthd on first use, build
ids), :mod:`~hearth_client.sync` (a blocking wrapper for scripts),
:mod:`~hearth_client.errors` (exceptions) and :mod:`~hearth_client.bench` (a load mode).

    async with await hearth_client.connect_or_start() as c:   # connect() never starts one
        print(await c.call("echo", {"hi": 1}, deadline=0.5))
"""

from .errors import (ConnectionLost, DeadlineExceeded, HearthError, RequestCancelled,
                     Superseded)
from .session import Client, PendingCall, Stream, connect
from .start import (StartError, build_id_matches, connect_or_start, expected_build_id,
                    file_hash, find_daemon, identity_hash, log_path, start_lock_path)
from .sync import SyncClient, connect_or_start_sync, connect_sync
from .wire import DEFAULT_MAX_FRAME, FrameReader, Hello, socket_path

__all__ = ["Client", "ConnectionLost", "DeadlineExceeded", "DEFAULT_MAX_FRAME", "FrameReader",
           "HearthError", "Hello", "PendingCall", "RequestCancelled", "Stream", "Superseded", "SyncClient",
           "StartError", "build_id_matches", "connect", "connect_or_start", "connect_or_start_sync",
           "connect_sync", "expected_build_id", "file_hash", "find_daemon", "identity_hash",
           "log_path", "socket_path", "start_lock_path"]
__version__ = "0.1.0"
