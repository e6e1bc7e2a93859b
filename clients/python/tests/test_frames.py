"""Runs every frame vector of conformance/frames.json through the Python client's wire layer:
each frame decoded and compared with its meaning (and, for what a client sends, encoded back
to the documented bytes), every bad header refused from its four bytes, every stream fed in
every chunking the vector names; plus the reader's one-buffer discipline."""

import pytest

from hearth_client.wire import (EmptyFrame, EnvelopeError, FrameError, FrameReader, FrameTooLarge, Hello,
                                decode_envelope, encode_cancel, encode_notification,
                                encode_request, encode_response)

from support import feeds, hexbytes, load, meaning

V = load("frames.json")
BY_NAME = {f["name"]: f for f in V["frames"] + V["bad_bodies"]}


def plain(expect):
    return {k: v for k, v in expect.items() if k not in ("fatal", "hello")}


def test_there_are_vectors():
    assert len(V["frames"]) >= 60 and V["bad_headers"] and V["streams"]


@pytest.mark.parametrize("v", V["frames"], ids=lambda v: v["name"])
def test_frame_decodes_to_its_meaning(v):
    [value] = FrameReader().feed(hexbytes(v["hex"]))
    env = decode_envelope(value)
    assert meaning(env) == plain(v["expect"])
    if "fatal" in v["expect"]:
        assert env.is_fatal
        assert {"code": env.params["code"], "supported": env.params["supported"]} == \
            v["expect"]["fatal"]
    if "hello" in v["expect"]:
        h = Hello.parse(env.result)
        assert {"protocol": h.protocol, "max_frame": h.max_frame,
                "max_in_flight": h.max_in_flight, "supported": h.supported} == v["expect"]["hello"]


CLIENT_DOC = [v for v in V["frames"] if v["direction"] == "c2d" and v["source"].startswith("docs/")]


@pytest.mark.parametrize("v", CLIENT_DOC, ids=lambda v: v["name"])
def test_client_frame_encodes_to_documented_bytes(v):
    e = v["expect"]
    if e["kind"] == "request":
        o = e.get("opts") or {}
        opts = {k: o[k] for k in ("deadline_ms", "supersede") if o.get(k) is not None}
        if o.get("stream"):
            opts["stream"] = True
        out = encode_request(e["version"], int(e["id"]), e["method"], e["params"], opts or None)
    elif e["kind"] == "response":
        out = encode_response(e["version"], int(e["id"]), e["result"], e["error"])
    elif e["kind"] == "notification":
        out = encode_notification(e["version"], e["method"], e["params"])
    else:
        out = encode_cancel(e["version"], int(e["id"]))
    assert out.hex(" ") == hexbytes(v["hex"]).hex(" ")


@pytest.mark.parametrize("v", V["bad_headers"], ids=lambda v: v["name"])
def test_bad_header_refused_from_header_alone(v):
    reader = FrameReader(v["max_frame"])
    if v["expect_error"] is None:
        assert reader.feed(hexbytes(v["hex"])) == []
    else:
        cls = {"frame_too_large": FrameTooLarge, "empty_frame": EmptyFrame}[v["expect_error"]]
        with pytest.raises(cls) as info:
            reader.feed(hexbytes(v["hex"]))
        assert isinstance(info.value, FrameError) and info.value.kind == v["expect_error"]
    assert reader.buffered() <= len(hexbytes(v["hex"]))


@pytest.mark.parametrize("v", V["bad_bodies"], ids=lambda v: v["name"])
def test_bad_body_is_refused(v):
    [value] = FrameReader().frames(hexbytes(v["hex"]))
    with pytest.raises(EnvelopeError):
        if isinstance(value, EnvelopeError):
            raise value
        decode_envelope(value)


def decoded(value):
    """What a client makes of one frame's value: its meaning, or a rejection."""
    try:
        if isinstance(value, EnvelopeError):
            raise value
        return meaning(decode_envelope(value))
    except EnvelopeError:
        return {"rejected": True}


@pytest.mark.parametrize("s", V["streams"], ids=lambda s: s["name"])
def test_stream_in_every_chunking(s):
    want = [plain(BY_NAME[n]["expect"]) if "expect" in BY_NAME[n] else {"rejected": True}
            for n in s["frames"]]
    data = hexbytes(s["hex"])
    runs = 0
    for spec in s["feeds"]:
        for chunks in feeds(data, spec):
            reader = FrameReader()
            got = [decoded(v) for c in chunks for v in reader.frames(c)]
            assert got == want, f"fed {spec}: {[len(c) for c in chunks]}"
            assert reader.buffered() == 0
            runs += 1
    assert runs > 2


def test_reader_compacts_one_buffer():
    reader = FrameReader()
    one = hexbytes("00 00 00 0a 95 01 01 07 c0 81 a2 68 69 01")
    many = one * 500
    n = 0
    for i in range(0, len(many), 7):
        n += len(reader.feed(many[i:i + 7]))
        assert reader.buffered() < 2 * len(one)
    assert n == 500 and reader.buffered() == 0


def test_random_frames_in_random_pieces():
    import random
    rng = random.Random(0x9E3779B9)
    for round_ in range(200):
        values = [[2, 1, i + 1, None, "v" * rng.randrange(300)] for i in range(1 + rng.randrange(20))]
        wire = b"".join(encode_response(2, v[2], v[4]) for v in values)
        reader, got, p = FrameReader(), [], 0
        while p < len(wire):
            n = 1 + rng.randrange(min(700, len(wire) - p))
            got += reader.feed(wire[p:p + n])
            p += n
        assert got == values, round_
        assert reader.buffered() == 0


def test_every_hex_example_of_protocol_md_is_a_vector():
    """docs/PROTOCOL.md is authoritative: each frame in its hex blocks must be in frames.json
    byte for byte, so the vectors cannot drift from the document."""
    import re
    from support import REPO
    blocks, cur, inside = [], [], False
    for line in (REPO / "docs" / "PROTOCOL.md").read_text().splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append(cur)
                cur = []
            inside = not inside
        elif inside:
            cur.append(line)
    vectors = {f["hex"] for f in V["frames"]}
    frames = []
    for block in blocks:
        data = []
        for line in block:
            hexes = []
            for tok in line.split():
                if not re.fullmatch(r"[0-9a-f]{2}", tok):
                    break
                hexes.append(tok)
            if line.split() and not hexes:
                data = []  # not a hex block (a diagram, code)
                break
            data += hexes
        wire = bytes.fromhex("".join(data))
        p = 0
        while p + 4 <= len(wire):
            n = int.from_bytes(wire[p:p + 4], "big")
            frames.append(wire[p:p + 4 + n].hex(" "))
            p += 4 + n
        assert p == len(wire), block
    assert len(frames) >= 29
    assert [f for f in frames if f not in vectors] == []
