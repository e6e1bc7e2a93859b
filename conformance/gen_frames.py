#!/usr/bin/env python3
"""Generates conformance/frames.json, the language-neutral frame vectors.

This script owns the *edge-case* vectors (integer widths, unknown keys, odd `$/fatal`
envelopes, bad headers, split and batched streams); it writes their bytes by hand, one
MessagePack marker at a time, so the widths are exactly the ones named. The vectors taken from
docs/PROTOCOL.md are copied here verbatim as hex strings: the document is authoritative and
this script never re-encodes them. The output is committed; rerun this script only to change
the vectors (`python3 conformance/gen_frames.py`), and review the diff of frames.json.

It needs nothing outside the standard library.
"""

import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frames.json")


# --- a tiny MessagePack writer: shortest forms, plus explicit helpers for chosen widths ------

def h(b: bytes) -> str:
    return b.hex(" ")


def s(text: str) -> bytes:
    raw = text.encode()
    n = len(raw)
    if n < 32:
        return bytes([0xA0 | n]) + raw
    if n < 256:
        return b"\xd9" + bytes([n]) + raw
    return b"\xda" + struct.pack(">H", n) + raw


def uint(v: int) -> bytes:
    if v < 128:
        return bytes([v])
    if v < 1 << 8:
        return b"\xcc" + struct.pack(">B", v)
    if v < 1 << 16:
        return b"\xcd" + struct.pack(">H", v)
    if v < 1 << 32:
        return b"\xce" + struct.pack(">I", v)
    return b"\xcf" + struct.pack(">Q", v)


def sint(v: int) -> bytes:
    if v >= 0:
        return uint(v)
    if v >= -32:
        return struct.pack(">b", v)
    if v >= -(1 << 7):
        return b"\xd0" + struct.pack(">b", v)
    if v >= -(1 << 15):
        return b"\xd1" + struct.pack(">h", v)
    if v >= -(1 << 31):
        return b"\xd2" + struct.pack(">i", v)
    return b"\xd3" + struct.pack(">q", v)


def enc(v) -> bytes:
    """Shortest encoding of a JSON-like value."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        return sint(v)
    if isinstance(v, str):
        return s(v)
    if isinstance(v, list):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        assert len(v) < 16
        return bytes([0x80 | len(v)]) + b"".join(s(k) + enc(x) for k, x in v.items())
    raise TypeError(v)


def arr(*parts: bytes) -> bytes:
    assert len(parts) < 16
    return bytes([0x90 | len(parts)]) + b"".join(parts)


def fmap(*pairs) -> bytes:
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


# Every width a receiver must accept for an unsigned id.
ID_WIDTHS = [
    ("positive fixint", b"\x07", 7),
    ("uint8", b"\xcc\x07", 7),
    ("uint16", b"\xcd\x00\x07", 7),
    ("uint32", b"\xce\x00\x00\x00\x07", 7),
    ("uint64", b"\xcf" + struct.pack(">Q", 7), 7),
    ("int8 holding a non-negative value", b"\xd0\x07", 7),
    ("int16 holding a non-negative value", b"\xd1\x00\x07", 7),
    ("int32 holding a non-negative value", b"\xd2\x00\x00\x00\x07", 7),
    ("int64 holding a non-negative value", b"\xd3" + struct.pack(">q", 7), 7),
    ("uint8 max", b"\xcc\xff", 255),
    ("uint16 max", b"\xcd\xff\xff", 65535),
    ("uint32 max", b"\xce\xff\xff\xff\xff", 4294967295),
    ("2^53 + 1 (beyond a JavaScript double)", b"\xcf" + struct.pack(">Q", 2**53 + 1), 2**53 + 1),
    ("uint64 max", b"\xcf" + b"\xff" * 8, 2**64 - 1),
]

# Every width a receiver must accept for an error code.
CODE_WIDTHS = [
    ("-32601 as int16 (what hearthd writes)", b"\xd1\x80\xa7", -32601),
    ("-32601 as int32", b"\xd2\xff\xff\x80\xa7", -32601),
    ("-32601 as int64", b"\xd3" + struct.pack(">q", -32601), -32601),
    ("-1 as negative fixint", b"\xff", -1),
    ("-128 as int8", b"\xd0\x80", -128),
    ("5 as positive fixint (an application code)", b"\x05", 5),
    ("200 as uint8", b"\xcc\xc8", 200),
    ("40000 as uint16", b"\xcd\x9c\x40", 40000),
    ("3000000000 as uint32", b"\xce" + struct.pack(">I", 3000000000), 3000000000),
    ("3000000000 as uint64", b"\xcf" + struct.pack(">Q", 3000000000), 3000000000),
    ("-3000000000 as int64", b"\xd3" + struct.pack(">q", -3000000000), -3000000000),
]


def doc(name, section, direction, hexstr, expect, note=None):
    v = {"name": name, "source": f"docs/PROTOCOL.md {section}", "direction": direction,
         "hex": " ".join(hexstr.split()), "expect": expect}
    if note:
        v["note"] = note
    return v


def made(name, direction, wire: bytes, expect, note=None, **extra):
    v = {"name": name, "source": "conformance/gen_frames.py", "direction": direction,
         "hex": h(wire), "expect": expect}
    if note:
        v["note"] = note
    v.update(extra)
    return v


HELLO_RESULT_V1 = {
    "protocol": 1, "server": "hearthd 0.1.0", "build": "release x86_64-linux",
    "methods": ["$/hello", "$/stats", "echo", "shutdown", "sleep"],
    "limits": {"max_frame": 8388608, "max_in_flight": 1024, "max_connections": 256,
               "max_depth": 64},
}

frames = [
    # ---------------------------------------------------------------- from PROTOCOL.md
    doc("6.1 request", "§6.1", "c2d",
        "00 00 00 0e 95 01 00 07 a4 65 63 68 6f 81 a2 68 69 01",
        {"version": 1, "kind": "request", "id": "7", "method": "echo", "params": {"hi": 1}}),
    doc("6.2 response, success", "§6.2", "d2c",
        "00 00 00 0a 95 01 01 07 c0 81 a2 68 69 01",
        {"version": 1, "kind": "response", "id": "7", "error": None, "result": {"hi": 1}}),
    doc("6.2 response, failure", "§6.2", "d2c",
        """00 00 00 25 95 01 01 08 82 a4 63 6f 64 65 d1 80 a7 a7 6d 65 73 73 61 67 65
           ae 6e 6f 20 73 75 63 68 20 6d 65 74 68 6f 64 c0""",
        {"version": 1, "kind": "response", "id": "8",
         "error": {"code": -32601, "message": "no such method"}, "result": None}),
    doc("6.3 notification", "§6.3", "c2d",
        "00 00 00 0d 94 01 02 a8 70 72 6f 67 72 65 73 73 32",
        {"version": 1, "kind": "notification", "method": "progress", "params": 50}),
    doc("6.4 cancel", "§6.4", "c2d", "00 00 00 04 93 01 03 07",
        {"version": 1, "kind": "cancel", "id": "7"}),
    doc("8.1 $/error after a c1 body", "§8.1", "d2c",
        """00 00 00 55 94 01 02 a7 24 2f 65 72 72 6f 72 82
           a4 63 6f 64 65 d1 80 44 a7 6d 65 73 73 61 67 65
           d9 37 70 61 72 73 65 20 65 72 72 6f 72 3a 20 72
           65 73 65 72 76 65 64 20 4d 65 73 73 61 67 65 50
           61 63 6b 20 6d 61 72 6b 65 72 20 30 78 63 31 20
           61 74 20 62 79 74 65 20 30""",
        {"version": 1, "kind": "notification", "method": "$/error",
         "params": {"code": -32700,
                    "message": "parse error: reserved MessagePack marker 0xc1 at byte 0"}}),
    doc("8.1 $/fatal for a version-3 message", "§8.1", "d2c",
        """00 00 00 5c 94 01 02 a7 24 2f 66 61 74 61 6c 83
           a4 63 6f 64 65 d1 82 fc a7 6d 65 73 73 61 67 65
           d9 31 75 6e 73 75 70 70 6f 72 74 65 64 20 70 72
           6f 74 6f 63 6f 6c 20 76 65 72 73 69 6f 6e 20 33
           3b 20 73 75 70 70 6f 72 74 65 64 3a 20 5b 31 2c
           20 32 5d a9 73 75 70 70 6f 72 74 65 64 92 01 02""",
        {"version": 1, "kind": "notification", "method": "$/fatal",
         "params": {"code": -32004,
                    "message": "unsupported protocol version 3; supported: [1, 2]",
                    "supported": [1, 2]},
         "fatal": {"code": -32004, "supported": [1, 2]}}),
    doc("11.1 hello request", "§11 step 1", "c2d",
        """00 00 00 19 95 01 00 01 a7 24 2f 68 65 6c 6c 6f
           81 a6 63 6c 69 65 6e 74 a4 64 65 6d 6f""",
        {"version": 1, "kind": "request", "id": "1", "method": "$/hello",
         "params": {"client": "demo"}}),
    doc("11.2 hello response", "§11 step 2", "d2c",
        """00 00 00 b3 95 01 01 01 c0 85 a8 70 72 6f 74 6f
           63 6f 6c 01 a6 73 65 72 76 65 72 ad 68 65 61 72
           74 68 64 20 30 2e 31 2e 30 a5 62 75 69 6c 64 b4
           72 65 6c 65 61 73 65 20 78 38 36 5f 36 34 2d 6c
           69 6e 75 78 a7 6d 65 74 68 6f 64 73 95 a7 24 2f
           68 65 6c 6c 6f a7 24 2f 73 74 61 74 73 a4 65 63
           68 6f a8 73 68 75 74 64 6f 77 6e a5 73 6c 65 65
           70 a6 6c 69 6d 69 74 73 84 a9 6d 61 78 5f 66 72
           61 6d 65 ce 00 80 00 00 ad 6d 61 78 5f 69 6e 5f
           66 6c 69 67 68 74 cd 04 00 af 6d 61 78 5f 63 6f
           6e 6e 65 63 74 69 6f 6e 73 cd 01 00 a9 6d 61 78
           5f 64 65 70 74 68 40""",
        {"version": 1, "kind": "response", "id": "1", "error": None, "result": HELLO_RESULT_V1,
         "hello": {"protocol": 1, "max_frame": 8388608, "max_in_flight": 1024,
                   "supported": []}}),
    doc("11.3 echo request", "§11 step 3", "c2d",
        "00 00 00 0e 95 01 00 07 a4 65 63 68 6f 81 a2 68 69 01",
        {"version": 1, "kind": "request", "id": "7", "method": "echo", "params": {"hi": 1}}),
    doc("11.4 unknown method request", "§11 step 4", "c2d",
        "00 00 00 10 95 01 00 08 aa 66 72 6f 62 6e 69 63 61 74 65 c0",
        {"version": 1, "kind": "request", "id": "8", "method": "frobnicate", "params": None}),
    doc("11.5 method not found", "§11 step 5", "d2c",
        """00 00 00 25 95 01 01 08 82 a4 63 6f 64 65 d1 80
           a7 a7 6d 65 73 73 61 67 65 ae 6e 6f 20 73 75 63
           68 20 6d 65 74 68 6f 64 c0""",
        {"version": 1, "kind": "response", "id": "8",
         "error": {"code": -32601, "message": "no such method"}, "result": None}),
    doc("11.6 echo response", "§11 step 6", "d2c",
        "00 00 00 0a 95 01 01 07 c0 81 a2 68 69 01",
        {"version": 1, "kind": "response", "id": "7", "error": None, "result": {"hi": 1}}),
    doc("11.7 notification", "§11 step 7", "c2d",
        "00 00 00 0d 94 01 02 a8 70 72 6f 67 72 65 73 73 32",
        {"version": 1, "kind": "notification", "method": "progress", "params": 50}),
    doc("11.8 sleep request", "§11 step 8", "c2d",
        "00 00 00 11 95 01 00 09 a5 73 6c 65 65 70 81 a2 6d 73 cd 27 10",
        {"version": 1, "kind": "request", "id": "9", "method": "sleep",
         "params": {"ms": 10000}}),
    doc("11.9 cancel", "§11 step 9", "c2d", "00 00 00 04 93 01 03 09",
        {"version": 1, "kind": "cancel", "id": "9"}),
    doc("11.10 request cancelled", "§11 step 10", "d2c",
        """00 00 00 2a 95 01 01 09 82 a4 63 6f 64 65 d2 ff
           ff 7f e0 a7 6d 65 73 73 61 67 65 b1 72 65 71 75
           65 73 74 20 63 61 6e 63 65 6c 6c 65 64 c0""",
        {"version": 1, "kind": "response", "id": "9",
         "error": {"code": -32800, "message": "request cancelled"}, "result": None}),
    doc("11.10 the race: the sleep's normal result", "§11 step 10", "d2c",
        """00 00 00 12 95 01 01 09 c0 81 a8 73 6c 65 70 74
           5f 6d 73 cd 27 10""",
        {"version": 1, "kind": "response", "id": "9", "error": None,
         "result": {"slept_ms": 10000}}),
    doc("15.6 request with deadline and supersede", "§15.6", "c2d",
        """00 00 00 29 96 02 00 05 a5 73 6c 65 65 70 81 a2
           6d 73 64 82 ab 64 65 61 64 6c 69 6e 65 5f 6d 73
           14 a9 73 75 70 65 72 73 65 64 65 a1 73""",
        {"version": 2, "kind": "request", "id": "5", "method": "sleep", "params": {"ms": 100},
         "opts": {"deadline_ms": 20, "supersede": "s", "stream": False}}),
    doc("15.6 deadline exceeded", "§15.6", "d2c",
        """00 00 00 28 95 02 01 05 82 a4 63 6f 64 65 d1 82
           fe a7 6d 65 73 73 61 67 65 b1 64 65 61 64 6c 69
           6e 65 20 65 78 63 65 65 64 65 64 c0""",
        {"version": 2, "kind": "response", "id": "5",
         "error": {"code": -32002, "message": "deadline exceeded"}, "result": None}),
    doc("15.6 superseded", "§15.6", "d2c",
        """00 00 00 23 95 02 01 05 82 a4 63 6f 64 65 d2 ff
           ff 7f df a7 6d 65 73 73 61 67 65 aa 73 75 70 65
           72 73 65 64 65 64 c0""",
        {"version": 2, "kind": "response", "id": "5",
         "error": {"code": -32801, "message": "superseded"}, "result": None}),
    doc("15.6 streamed count request", "§15.6", "c2d",
        """00 00 00 24 96 02 00 06 a5 63 6f 75 6e 74 82 a1
           6e 02 ab 69 6e 74 65 72 76 61 6c 5f 6d 73 00 81
           a6 73 74 72 65 61 6d c3""",
        {"version": 2, "kind": "request", "id": "6", "method": "count",
         "params": {"n": 2, "interval_ms": 0},
         "opts": {"deadline_ms": None, "supersede": None, "stream": True}}),
    doc("15.6 partial 0", "§15.6", "d2c", "00 00 00 06 95 02 04 06 00 00",
        {"version": 2, "kind": "partial", "id": "6", "seq": 0, "chunk": 0}),
    doc("15.6 partial 1", "§15.6", "d2c", "00 00 00 06 95 02 04 06 01 01",
        {"version": 2, "kind": "partial", "id": "6", "seq": 1, "chunk": 1}),
    doc("15.6 count response", "§15.6", "d2c", "00 00 00 06 95 02 01 06 c0 02",
        {"version": 2, "kind": "response", "id": "6", "error": None, "result": 2}),
    doc("15.6 daemon request", "§15.6", "d2c",
        """00 00 00 13 95 02 00 01 ad 65 64 69 74 6f 72 2f
           63 6f 6e 66 69 67 c0""",
        {"version": 2, "kind": "request", "id": "1", "method": "editor/config",
         "params": None}),
    doc("15.6 client answer to a daemon request", "§15.6", "c2d",
        "00 00 00 0b 95 02 01 01 c0 81 a3 74 61 62 04",
        {"version": 2, "kind": "response", "id": "1", "error": None, "result": {"tab": 4}}),
    doc("15.6 daemon cancel", "§15.6", "d2c", "00 00 00 04 93 02 03 01",
        {"version": 2, "kind": "cancel", "id": "1"}),
    doc("15.6 v2 hello request", "§15.6", "c2d",
        "00 00 00 0d 95 02 00 01 a7 24 2f 68 65 6c 6c 6f c0",
        {"version": 2, "kind": "request", "id": "1", "method": "$/hello", "params": None}),
]

# ---------------------------------------------------------------- integer widths
for label, raw, value in ID_WIDTHS:
    frames.append(made(f"response id as {label}", "d2c",
                       frame(arr(b"\x02", b"\x01", raw, b"\xc0", enc("ok"))),
                       {"version": 2, "kind": "response", "id": str(value), "error": None,
                        "result": "ok"}))
for label, raw, value in ID_WIDTHS[:9]:
    frames.append(made(f"partial id and seq as {label}", "d2c",
                       frame(arr(b"\x02", b"\x04", raw, raw, b"\xc0")),
                       {"version": 2, "kind": "partial", "id": str(value), "seq": value,
                        "chunk": None}))
for label, raw, value in CODE_WIDTHS:
    frames.append(made(f"error code {label}", "d2c",
                       frame(arr(b"\x01", b"\x01", b"\x03",
                                 fmap((s("code"), raw), (s("message"), s("m"))), b"\xc0")),
                       {"version": 1, "kind": "response", "id": "3",
                        "error": {"code": value, "message": "m"}, "result": None}))
frames.append(made("version and kind as uint8 and uint16", "d2c",
                   frame(arr(b"\xcc\x02", b"\xcd\x00\x01", b"\x07", b"\xc0", b"\x2a")),
                   {"version": 2, "kind": "response", "id": "7", "error": None, "result": 42}))

# ---------------------------------------------------------------- unknown keys
frames.append(made("error map with data and an unknown key", "d2c",
                   frame(arr(b"\x02", b"\x01", b"\x04",
                             fmap((s("later"), enc([1, 2])), (s("code"), sint(-32602)),
                                  (s("data"), enc({"field": "ms"})),
                                  (s("message"), s("invalid params"))), b"\xc0")),
                   {"version": 2, "kind": "response", "id": "4",
                    "error": {"code": -32602, "message": "invalid params",
                              "data": {"field": "ms"}}, "result": None}))
hello_v2 = {
    "protocol": 2, "server": "hearthd 0.2.0", "build": "debug x86_64-linux",
    "methods": ["$/hello", "$/stats", "ask", "count", "echo", "shutdown", "sleep"],
    "limits": {"max_frame": 1048576, "max_in_flight": 8, "max_connections": 4,
               "max_depth": 64, "max_wait": 8},
    "supported": [1, 2], "colour": "green",
}
frames.append(made("v2 hello response with unknown keys (top level and in limits)", "d2c",
                   frame(arr(b"\x02", b"\x01", b"\x01", b"\xc0", enc(hello_v2))),
                   {"version": 2, "kind": "response", "id": "1", "error": None,
                    "result": hello_v2,
                    "hello": {"protocol": 2, "max_frame": 1048576, "max_in_flight": 8,
                              "supported": [1, 2]}}))
hello_min = {"protocol": 1, "server": "hearthd 0.0.1", "limits": {"max_frame": 4096,
                                                                   "max_in_flight": 2}}
frames.append(made("v1 hello response missing optional keys", "d2c",
                   frame(arr(b"\x01", b"\x01", b"\x01", b"\xc0", enc(hello_min))),
                   {"version": 1, "kind": "response", "id": "1", "error": None,
                    "result": hello_min,
                    "hello": {"protocol": 1, "max_frame": 4096, "max_in_flight": 2,
                              "supported": []}},
                   note="build, methods, max_connections, max_depth default to '', [], 0, 0"))

# ---------------------------------------------------------------- notifications
frames.append(made("unknown notification method (v2)", "d2c",
                   frame(arr(b"\x02", b"\x02", s("x/weather"), enc({"rain": True}))),
                   {"version": 2, "kind": "notification", "method": "x/weather",
                    "params": {"rain": True}},
                   note="a client delivers it to a catch-all listener if any, else ignores it"))
frames.append(made("$/error in a v2 envelope with data", "d2c",
                   frame(arr(b"\x02", b"\x02", s("$/error"),
                             enc({"code": -32600, "message": "bad", "data": "x"}))),
                   {"version": 2, "kind": "notification", "method": "$/error",
                    "params": {"code": -32600, "message": "bad", "data": "x"}}))

# ---------------------------------------------------------------- $/fatal of any version
fatal_v1 = {"code": -32004, "message": "unsupported protocol version 2; supported: [1]",
            "supported": [1]}
frames.append(made("$/fatal -32004 from a v1-only daemon (v1 envelope)", "d2c",
                   frame(arr(b"\x01", b"\x02", s("$/fatal"), enc(fatal_v1))),
                   {"version": 1, "kind": "notification", "method": "$/fatal",
                    "params": fatal_v1, "fatal": {"code": -32004, "supported": [1]}},
                   note="the answer to a v2 first message: fall back to version 1"))
fatal_v2 = {"code": -32001, "message": "server busy", "supported": [1, 2]}
frames.append(made("$/fatal -32001 in a v2 envelope", "d2c",
                   frame(arr(b"\x02", b"\x02", s("$/fatal"), enc(fatal_v2))),
                   {"version": 2, "kind": "notification", "method": "$/fatal",
                    "params": fatal_v2, "fatal": {"code": -32001, "supported": [1, 2]}}))
fatal_v7 = {"code": -32004, "message": "unsupported protocol version 2; supported: [7]",
            "supported": [7], "hint": "upgrade"}
frames.append(made("$/fatal in a v7 envelope with an unknown key", "d2c",
                   frame(arr(b"\x07", b"\x02", s("$/fatal"), enc(fatal_v7))),
                   {"version": 7, "kind": "notification", "method": "$/fatal",
                    "params": fatal_v7, "fatal": {"code": -32004, "supported": [7]}},
                   note="the shape of $/fatal is frozen: recognise it whatever the version"))

# ---------------------------------------------------------------- bad headers
bad_headers = [
    {"name": "oversize header (default max_frame + 1)", "hex": "00 80 00 01",
     "max_frame": 8388608, "expect_error": "frame_too_large",
     "note": "refused from the 4 header bytes alone, before any body is buffered"},
    {"name": "oversize header (max u32)", "hex": "ff ff ff ff", "max_frame": 8388608,
     "expect_error": "frame_too_large"},
    {"name": "oversize header after hello announced 1024", "hex": "00 00 04 01 95",
     "max_frame": 1024, "expect_error": "frame_too_large"},
    {"name": "zero-length header", "hex": "00 00 00 00", "max_frame": 8388608,
     "expect_error": "empty_frame"},
    {"name": "header of exactly max_frame waits for its body", "hex": "00 00 04 00 95 01",
     "max_frame": 1024, "expect_error": None,
     "note": "valid: the reader needs more bytes, yields no frame and no error"},
]

# ---------------------------------------------------------------- bad bodies
# Well-framed bodies a client cannot use. The frame boundary is intact, so a client drops the
# message (the call it belonged to, if any, gets no answer from it) and keeps reading.
# expect_error: "parse" (not one well-formed MessagePack value), "invalid" (not a valid
# envelope), "unsupported_version" (a version other than 1 and 2, and not a $/fatal).
bad_bodies = [
    {"name": "reserved marker c1", "body": b"\xc1", "expect_error": "parse"},
    {"name": "truncated array", "body": b"\x92\x01", "expect_error": "parse"},
    {"name": "trailing byte after the message",
     "body": arr(b"\x01", b"\x01", b"\x07", b"\xc0", b"\x01") + b"\x00",
     "expect_error": "invalid"},
    {"name": "not an array", "body": s("abc"), "expect_error": "invalid"},
    {"name": "unknown kind 9", "body": arr(b"\x02", b"\x09", b"\x01"), "expect_error": "invalid"},
    {"name": "response with too few elements", "body": arr(b"\x02", b"\x01", b"\x07", b"\xc0"),
     "expect_error": "invalid"},
    {"name": "error neither nil nor a map",
     "body": arr(b"\x02", b"\x01", b"\x07", s("x"), b"\xc0"), "expect_error": "invalid"},
    {"name": "error map without a code",
     "body": arr(b"\x02", b"\x01", b"\x07", fmap((s("message"), s("x"))), b"\xc0"),
     "expect_error": "invalid"},
    {"name": "negative id", "body": arr(b"\x02", b"\x01", b"\xff", b"\xc0", b"\xc0"),
     "expect_error": "invalid"},
    {"name": "partial in a version 1 envelope",
     "body": arr(b"\x01", b"\x04", b"\x06", b"\x00", b"\x00"), "expect_error": "invalid"},
    {"name": "version 3 notification that is not $/fatal",
     "body": arr(b"\x03", b"\x02", s("m"), b"\xc0"), "expect_error": "unsupported_version"},
]
for b in bad_bodies:
    b["hex"] = h(frame(b.pop("body")))

# ---------------------------------------------------------------- streams
by_name = {f["name"]: f for f in frames}
by_name.update({b["name"]: b for b in bad_bodies})


def cat(*names):
    return " ".join(by_name[n]["hex"] for n in names)


streams = [
    {"name": "section 11 daemon side: hello, error, echo",
     "frames": ["11.2 hello response", "11.5 method not found", "11.6 echo response"],
     "feeds": ["whole", "bytewise", "every_single_split", [3, 4, 5, 183, 184, 186, 230]]},
    {"name": "section 15.6 stream: two partials and a response in one read",
     "frames": ["15.6 partial 0", "15.6 partial 1", "15.6 count response"],
     "feeds": ["whole", "bytewise", "every_single_split", "every_double_split"]},
    {"name": "mixed kinds and versions of envelope: fatal last",
     "frames": ["15.6 daemon request", "unknown notification method (v2)",
                "response id as uint64 max", "$/fatal in a v7 envelope with an unknown key"],
     "feeds": ["whole", "bytewise", "every_single_split"]},
    {"name": "bad bodies between good frames: the reader stays in step",
     "frames": ["6.2 response, success", "reserved marker c1", "trailing byte after the message",
                "15.6 partial 0", "not an array", "15.6 count response"],
     "feeds": ["whole", "bytewise", "every_single_split"]},
]
for st in streams:
    st["hex"] = cat(*st["frames"])

doc_text = {
    "format": 1,
    "about": "Frame vectors for hearth clients. See conformance/README.md for the format.",
    "frames": frames,
    "bad_headers": bad_headers,
    "bad_bodies": bad_bodies,
    "streams": streams,
}

with open(OUT, "w") as f:
    json.dump(doc_text, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"wrote {OUT}: {len(frames)} frames, {len(bad_headers)} bad headers, "
      f"{len(bad_bodies)} bad bodies, {len(streams)} streams")
