/**
 * Behaviour of the Node client beyond the shared vectors: the socket path rule, the typed
 * errors, and live checks against a real hearthd — many calls on one connection, an
 * already-aborted signal, version 1 emulation of deadline and supersede, close, the local
 * in-flight limit, handler errors passed back through `ask`, and a large frame.
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { after, before, test } from "node:test";

import { connect } from "../client";
import {
  ConnectionLostError,
  DeadlineExceededError,
  HearthError,
  RequestCancelledError,
  SupersededError,
  isCancelled,
  isDeadline,
  isSuperseded,
} from "../errors";
import { socketPath } from "../wire";
import { Daemon, guard, spawnDaemon, tempDir } from "./support";

test("socket path rule (§3.1)", () => {
  const uid = os.userInfo().uid;
  assert.equal(socketPath({ HEARTH_SOCKET: "/x/y.sock", XDG_RUNTIME_DIR: "/run/user/1" }), "/x/y.sock");
  assert.equal(socketPath({ HEARTH_SOCKET: "", XDG_RUNTIME_DIR: "/run/user/1" }), "/run/user/1/hearth/hearthd.sock");
  assert.equal(socketPath({ XDG_RUNTIME_DIR: "relative/dir" }), `/tmp/hearth-${uid}/hearthd.sock`);
  assert.equal(socketPath({ XDG_RUNTIME_DIR: "" }), `/tmp/hearth-${uid}/hearthd.sock`);
  assert.equal(socketPath({}), `/tmp/hearth-${uid}/hearthd.sock`);
});

test("typed errors carry code, message and data", () => {
  const s = HearthError.from({ code: -32801, message: "superseded" });
  assert.ok(s instanceof SupersededError && isSuperseded(s) && !isDeadline(s));
  const d = HearthError.from({ code: BigInt(-32002), message: "deadline exceeded", data: { ms: 5 } });
  assert.ok(d instanceof DeadlineExceededError && isDeadline(d));
  assert.deepEqual(d.data, { ms: 5 });
  const c = HearthError.from({ code: -32800, message: "request cancelled" });
  assert.ok(c instanceof RequestCancelledError && isCancelled(c));
  const a = HearthError.from({ code: 7, message: "app" });
  assert.equal(a.code, 7);
  assert.equal(a.rawMessage, "app");
  assert.ok(!isSuperseded(a) && !isDeadline(a) && !isCancelled(a));
});

test("no daemon at the path: a clear error with the errno code", async () => {
  const path = "/nonexistent-hearth-dir/hearthd.sock";
  await assert.rejects(connect({ path }), (e: NodeJS.ErrnoException) => e.code === "ENOENT" && e.message.includes(path));
});

test("connect gives up when its signal aborts (a daemon that never answers hello)", async () => {
  const dir = tempDir();
  const path = `${dir}/hearthd.sock`;
  const ac = new AbortController();
  const server = net.createServer((s) => s.once("data", () => ac.abort())); // reads, never answers
  await new Promise<void>((r) => server.listen(path, () => r()));
  try {
    await assert.rejects(guard(connect({ path, signal: ac.signal }), 15000, "connect"), { name: "AbortError" });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

let daemon: Daemon;
before(async () => {
  daemon = await spawnDaemon(["--max-in-flight", "4"]);
});
after(async () => {
  await daemon.kill();
});

test("many calls in flight on one connection, each matched by id", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    const n = 300;
    const results = await guard(Promise.all(Array.from({ length: n }, (_, i) => c.call("echo", { i, s: "x".repeat(i % 17) }))), 15000, "echos");
    results.forEach((r, i) => assert.deepEqual(r, { i, s: "x".repeat(i % 17) }));
    assert.equal(c.inFlight, 0);
  } finally {
    await c.close();
  }
});

test("the local in-flight limit stays below max_in_flight", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    assert.equal(c.hello.maxInFlight, 4);
    let peak = 0;
    const calls = Array.from({ length: 20 }, () => {
      const p = c.call("sleep", { ms: 1 });
      peak = Math.max(peak, c.inFlight);
      return p;
    });
    await guard(Promise.all(calls), 15000, "sleeps");
    assert.ok(peak <= 3, `peak ${peak}`);
  } finally {
    await c.close();
  }
});

test("an already-aborted signal rejects without sending", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.call("sleep", { ms: 60000 }, { signal: ac.signal }), { name: "AbortError" });
    assert.equal(c.inFlight, 0);
  } finally {
    await c.close();
  }
});

test("version 1: deadline and supersede are enforced by the client, by cancelling", async () => {
  const c = await connect({ path: daemon.socket, protocol: 1 });
  try {
    assert.equal(c.version, 1);
    await assert.rejects(c.call("sleep", { ms: 60000 }, { deadline: 20 }), DeadlineExceededError);
    const old = c.call("sleep", { ms: 60000 }, { supersede: "k" });
    const fresh = c.call("sleep", { ms: 1 }, { supersede: "k" });
    await assert.rejects(old, SupersededError);
    assert.deepEqual(await fresh, { slept_ms: 1 });
    await guard(c.idle(), 15000, "late answers consumed");
  } finally {
    await c.close();
  }
});

test("close fails every pending call at once", async () => {
  const c = await connect({ path: daemon.socket });
  const pending = [c.call("sleep", { ms: 60000 }), c.call("sleep", { ms: 60000 })];
  await c.close();
  for (const p of pending) await assert.rejects(p, ConnectionLostError);
  await assert.rejects(c.call("echo", 1), ConnectionLostError);
});

test("a large value crosses many reads intact", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const back = (await guard(c.call("echo", big), 15000, "big echo")) as Uint8Array;
    assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(big)), 0);
  } finally {
    await c.close();
  }
});

test("a handler's error goes back through ask unchanged; notify is never answered", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    assert.equal(c.version, 2, "needs a version 2 hearthd");
    c.serve("editor/fail", () => {
      throw new HearthError(4242, "no config here", { why: "test" });
    });
    c.notify("x/nobody-listens", { a: 1 });
    const err = await c.call("ask", { method: "editor/fail", params: null }).then(
      () => assert.fail("ask should fail"),
      (e) => e,
    );
    assert.ok(err instanceof HearthError);
    assert.equal(err.code, 4242);
    assert.equal(err.rawMessage, "no config here");
    assert.deepEqual(err.data, { why: "test" });
  } finally {
    await c.close();
  }
});

test("leaving a stream early cancels the call; its answer is still consumed", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    assert.equal(c.version, 2, "needs a version 2 hearthd");
    const s = c.stream("count", { n: 1000000, interval_ms: 5 });
    const got: unknown[] = [];
    for await (const chunk of s) {
      got.push(chunk);
      if (got.length === 3) break;
    }
    assert.deepEqual(got, [0, 1, 2]);
    await assert.rejects(s.result, (e: unknown) => e instanceof HearthError && e.code === -32800);
    await guard(c.idle(), 15000, "the daemon's -32800 consumed");
    const stats = (await c.call("$/stats")) as { in_flight: number };
    assert.equal(stats.in_flight, 0);
  } finally {
    await c.close();
  }
});

test("the load mode runs and reports calls/s and p50/p99", async () => {
  const { execFile } = await import("node:child_process");
  const path = await import("node:path");
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [path.join(__dirname, "..", "bench.js"), "--in-flight", "4", "--duration", "0.3", "--socket", daemon.socket],
      { timeout: 15000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  assert.match(out, /in-flight 4, .* \d+ calls, \d+ calls\/s, p50 \d+ us, p99 \d+ us/);
});

test("a request above max_frame, or one that cannot be encoded, fails alone", async () => {
  const small = await spawnDaemon(["--max-frame", "1024"]);
  const c = await connect({ path: small.socket });
  try {
    assert.equal(c.hello.maxFrame, 1024);
    await assert.rejects(c.call("echo", "x".repeat(2000)), (e: unknown) => e instanceof HearthError && e.code === -32005);
    await assert.rejects(c.call("echo", { f: () => 1 } as unknown));
    assert.equal(c.inFlight, 0);
    assert.deepEqual(await c.call("echo", "still fine"), "still fine");
  } finally {
    await c.close();
    await small.kill();
  }
});

test("a call aborted while queued behind the in-flight limit leaves at once, unsent", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    const running = [1, 2, 3].map(() => c.call("sleep", { ms: 60000 }));
    running.forEach((p) => p.catch(() => {}));
    assert.equal(c.inFlight, 3);
    const ac = new AbortController();
    const queued = c.call("echo", "never sent", { signal: ac.signal });
    assert.equal(c.inFlight, 3);
    ac.abort();
    await assert.rejects(queued, { name: "AbortError" });
  } finally {
    await c.close();
  }
});

test("a handler whose result cannot be encoded is answered -32603, once", async () => {
  const c = await connect({ path: daemon.socket });
  try {
    c.serve("editor/odd", () => ({ f: () => 1 }));
    await assert.rejects(c.call("ask", { method: "editor/odd", params: null }), (e: unknown) => e instanceof HearthError && e.code === -32603);
  } finally {
    await c.close();
  }
});
