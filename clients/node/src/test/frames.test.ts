/**
 * Runs every frame vector of conformance/frames.json through the Node client's wire layer:
 * each frame decoded and compared with its meaning (and, for what a client sends, encoded
 * back to the same bytes), every bad header refused from its four bytes, every stream fed in
 * every chunking the vector names. Also: the reader keeps one buffer, not one per frame.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { FrameError } from "../errors";
import { FrameReader, decodeEnvelope, encodeCancel, encodeNotification, encodeRequest, encodeResponse, parseHello, unpack } from "../wire";
import { feeds, hexBytes, loadJson, meaning, norm, readStream } from "./support";

const vectors = loadJson("frames.json");

function decodeOne(bytes: Buffer) {
  const bodies: Uint8Array[] = [];
  new FrameReader().feed(bytes, (b) => bodies.push(Uint8Array.from(b)));
  assert.equal(bodies.length, 1, "exactly one frame");
  return decodeEnvelope(unpack(bodies[0]));
}

test("frame vectors: every frame decodes to its meaning", () => {
  assert.ok(vectors.frames.length >= 60);
  for (const v of vectors.frames) {
    const env = decodeOne(hexBytes(v.hex));
    const want = { ...v.expect };
    delete want.fatal;
    delete want.hello;
    assert.deepStrictEqual(meaning(env), want, v.name);
    if (v.expect.fatal) {
      const p = norm((env as any).params) as any;
      assert.equal(env.kind, 2, v.name);
      assert.equal((env as any).method, "$/fatal", v.name);
      assert.deepStrictEqual({ code: p.code, supported: p.supported }, v.expect.fatal, v.name);
    }
    if (v.expect.hello) {
      const h = parseHello((env as any).result);
      assert.deepStrictEqual(
        { protocol: h.protocol, max_frame: h.maxFrame, max_in_flight: h.maxInFlight, supported: h.supported },
        v.expect.hello,
        v.name,
      );
    }
  }
});

test("frame vectors: what a client sends encodes to the documented bytes", () => {
  let checked = 0;
  for (const v of vectors.frames) {
    if (v.direction !== "c2d" || !String(v.source).startsWith("docs/")) continue;
    const e = v.expect;
    let out: Buffer;
    switch (e.kind) {
      case "request": {
        const opts: Record<string, unknown> = {};
        if (e.opts?.deadline_ms != null) opts.deadline_ms = e.opts.deadline_ms;
        if (e.opts?.supersede != null) opts.supersede = e.opts.supersede;
        if (e.opts?.stream) opts.stream = true;
        out = encodeRequest(e.version, Number(e.id), e.method, e.params, opts);
        break;
      }
      case "response":
        out = encodeResponse(e.version, Number(e.id), e.error, e.result);
        break;
      case "notification":
        out = encodeNotification(e.version, e.method, e.params);
        break;
      default:
        out = encodeCancel(e.version, Number(e.id));
    }
    assert.equal(out.toString("hex"), hexBytes(v.hex).toString("hex"), v.name);
    checked++;
  }
  assert.ok(checked >= 10, `${checked} client frames checked`);
});

test("frame vectors: bad headers are refused from the header alone", () => {
  for (const v of vectors.bad_headers) {
    const reader = new FrameReader(v.max_frame);
    const got: Uint8Array[] = [];
    if (v.expect_error === null) {
      reader.feed(hexBytes(v.hex), (b) => got.push(b));
      assert.equal(got.length, 0, v.name);
      assert.ok(reader.capacity < 1 << 20, `${v.name}: no body-sized buffer reserved`);
    } else {
      assert.throws(
        () => reader.feed(hexBytes(v.hex), (b) => got.push(b)),
        (e: unknown) => e instanceof FrameError && e.kind === v.expect_error,
        v.name,
      );
      assert.ok(reader.capacity < 1 << 20, `${v.name}: no body-sized buffer reserved`);
    }
  }
});

test("frame vectors: bad bodies are refused (and cost nothing but the message)", () => {
  assert.ok(vectors.bad_bodies.length >= 10);
  for (const v of vectors.bad_bodies) {
    const bodies: Uint8Array[] = [];
    new FrameReader().feed(hexBytes(v.hex), (b) => bodies.push(Uint8Array.from(b)));
    assert.equal(bodies.length, 1, v.name);
    assert.throws(() => decodeEnvelope(unpack(bodies[0])), v.name);
  }
});

test("frame vectors: streams split at every byte and batched in one read", () => {
  const byName = new Map([...vectors.frames, ...vectors.bad_bodies].map((f: any) => [f.name, f]));
  let runs = 0;
  for (const s of vectors.streams) {
    const want = s.frames.map((n: string) => {
      const f = byName.get(n) as any;
      if (!f.expect) return { rejected: true };
      const e = { ...f.expect };
      delete e.fatal;
      delete e.hello;
      return e;
    });
    const bytes = hexBytes(s.hex);
    for (const spec of s.feeds) {
      for (const chunks of feeds(bytes, spec)) {
        assert.deepStrictEqual(readStream(chunks), want, `${s.name} fed ${JSON.stringify(spec)}`);
        runs++;
      }
    }
  }
  assert.ok(runs > 500, `${runs} chunkings`);
});

test("the frame reader keeps one buffer however many frames pass", () => {
  const reader = new FrameReader(8 * 1024 * 1024, 1024);
  const one = hexBytes("00 00 00 0a 95 01 01 07 c0 81 a2 68 69 01");
  const many = Buffer.concat(Array.from({ length: 500 }, () => one));
  let n = 0;
  const cap = reader.capacity;
  // Odd-sized pieces so that most frames straddle a boundary and go through the buffer.
  for (let i = 0; i < many.length; i += 7) reader.feed(many.subarray(i, i + 7), () => n++);
  assert.equal(n, 500);
  assert.equal(reader.capacity, cap, "no growth for small frames");
  assert.equal(reader.buffered, 0);
});

test("random frames fed in random pieces come out whole and in order", () => {
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let round = 0; round < 200; round++) {
    const values = Array.from({ length: 1 + rand(20) }, (_, i) => [2, 1, i + 1, null, "v".repeat(rand(300))]);
    const wire = Buffer.concat(values.map((v) => encodeResponse(2, v[2] as number, null, v[4])));
    const reader = new FrameReader(8 * 1024 * 1024, 16);
    const got: unknown[] = [];
    for (let p = 0; p < wire.length; ) {
      const n = 1 + rand(Math.min(700, wire.length - p));
      reader.feed(wire.subarray(p, p + n), (b) => got.push(unpack(b)));
      p += n;
    }
    assert.deepStrictEqual(got, values, `round ${round}`);
    assert.equal(reader.buffered, 0);
  }
});
