/**
 * Start on first use (`connectOrStart`, start.ts) against a real hearthd: a start from
 * nothing, 20 clients starting at the same moment (one daemon serves them all), failing
 * starts, the opt-outs, errors that are not "nothing answers", an unsafe folder, replacing a
 * daemon of another build and keeping it, and the build id vectors of
 * conformance/build_id.json. Every daemon a test starts is killed at its end, found by its
 * command line (`--socket <the test's socket>`).
 */

import { Encoder } from "@msgpack/msgpack";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

import { Client } from "../client";
import {
  StartError,
  buildIdMatches,
  connectOrStart,
  expectedBuildId,
  fileHash,
  findDaemon,
  identityHash,
  logPath,
  type StartOptions,
} from "../start";
import { FrameReader, decodeEnvelope, unpack } from "../wire";
import { HEARTHD, cleanEnv, daemonPids, guard, killDaemons, loadJson, tempDir } from "./support";

const GUARD = 30000;

/** Runs `fn` with a socket in a fresh 0700 folder; kills every daemon on it afterwards. */
async function withSocket(fn: (socket: string, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const socket = path.join(dir, "hearthd.sock");
  try {
    await guard(fn(socket, dir), GUARD, "start test");
  } finally {
    await killDaemons(socket);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function opts(socket: string, more: StartOptions = {}): StartOptions {
  return { path: socket, daemon: HEARTHD, env: cleanEnv(), ...more };
}

test("build id vectors (conformance/build_id.json)", () => {
  const v = loadJson("build_id.json");
  assert.equal(v.format, 1);
  let ran = 0;
  for (const c of v.cases) {
    const got = identityHash(BigInt(c.size), BigInt(c.mtime_sec), BigInt(c.mtime_nsec), BigInt(c.ino), BigInt(c.dev));
    assert.equal(got, c.hash, c.name);
    ran++;
  }
  assert.equal(ran, 6, "every vector ran");
});

test("a build id matches when equal or when its part after the last + is", () => {
  assert.ok(buildIdMatches("abc", "abc"));
  assert.ok(buildIdMatches("0.1.0+9ec04cbaa66ef9a9", "9ec04cbaa66ef9a9"));
  assert.ok(buildIdMatches("1.0+rc+9ec04cbaa66ef9a9", "9ec04cbaa66ef9a9"));
  assert.ok(!buildIdMatches("0.1.0+9ec04cbaa66ef9a9", "0.1.0"));
  assert.ok(!buildIdMatches("old", "new"));
});

test("the expected build id is the override, else the file's hash", () => {
  const dir = tempDir();
  try {
    const exe = path.join(dir, "hearthd");
    fs.writeFileSync(exe, "one");
    const st = fs.statSync(exe, { bigint: true });
    const want = identityHash(st.size, st.mtimeNs / 1_000_000_000n, st.mtimeNs % 1_000_000_000n, st.ino, st.dev);
    assert.equal(fileHash(exe), want);
    assert.equal(expectedBuildId(exe), want);
    assert.equal(expectedBuildId(exe, "test-old"), "test-old");
    assert.equal(expectedBuildId(path.join(dir, "missing")), undefined);
    fs.writeFileSync(exe, "a rebuilt binary");
    assert.notEqual(fileHash(exe), want, "a rewrite changes the size");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the daemon is found by $HEARTHD, then on PATH, else a clear error", () => {
  const dir = tempDir();
  try {
    assert.equal(findDaemon({ HEARTHD: "/x/hearthd", PATH: dir }), "/x/hearthd");
    assert.throws(
      () => findDaemon({ HEARTHD: "", PATH: dir }),
      (e: unknown) => e instanceof StartError && e.kind === "not_found" && e.message.includes("HEARTHD"),
    );
    fs.writeFileSync(path.join(dir, "hearthd"), "");
    assert.equal(findDaemon({ PATH: `/nonexistent:${dir}` }), path.join(dir, "hearthd"));
    assert.equal(logPath("/run/u/hearth/hearthd.sock"), "/run/u/hearth/hearthd.log");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("start from nothing: an owner-only folder, a log beside the socket, a daemon that answers", async () => {
  await withSocket(async (_s, dir) => {
    const socket = path.join(dir, "sub", "hearthd.sock"); // the folder does not exist yet
    try {
      const c = await connectOrStart(opts(socket));
      assert.equal(c.version, 2);
      assert.ok(c.hello.server.startsWith("hearthd "), c.hello.server);
      assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
      const log = fs.statSync(path.join(dir, "sub", "hearthd.log"));
      assert.equal(log.mode & 0o777, 0o600);
      assert.deepEqual(await c.call("echo", { hi: 1 }), { hi: 1 });
      const pids = daemonPids(socket);
      assert.equal(pids.length, 1);
      const argv = fs.readFileSync(`/proc/${pids[0]}/cmdline`, "utf8").split("\0");
      assert.deepEqual(argv.slice(1, 5), ["--socket", socket, "--idle-exit", "10m"]);
      // Its own session: detached from ours.
      const sid = (pid: number | string) => fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[3];
      assert.notEqual(sid(pids[0]), sid("self"));
      // The same build: a second client connects to it rather than replacing it.
      const again = await connectOrStart(opts(socket));
      assert.deepEqual(daemonPids(socket), pids);
      await again.close();
      await c.close();
    } finally {
      await killDaemons(socket);
    }
  });
});

test("20 clients starting at the same moment: one daemon serves them all", async () => {
  await withSocket(async (socket) => {
    // allSettled: a failure must not leave other starts running past the test's cleanup.
    const settled = await Promise.allSettled(Array.from({ length: 20 }, () => connectOrStart(opts(socket))));
    const clients: Client[] = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = settled.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    if (failed.length > 0) await Promise.all(clients.map((c) => c.close()));
    assert.deepEqual(failed, []);
    const stats = (await clients[0].call("$/stats")) as Record<string, unknown>;
    assert.equal(Number(stats.connections), 20);
    assert.equal(daemonPids(socket).length, 1);
    const log = fs.readFileSync(logPath(socket), "utf8");
    assert.equal(log.split("ready on").length - 1, 1, log);
    await Promise.all(clients.map((c) => c.close()));
  });
});

test("a daemon that exits at once: the documented error, with the log", async () => {
  await withSocket(async (socket) => {
    await assert.rejects(
      connectOrStart(opts(socket, { daemon: "/bin/false" })),
      (e: unknown) =>
        e instanceof StartError &&
        e.kind === "exited" &&
        e.message.includes("exit status 1") &&
        e.message.includes(socket) &&
        e.message.includes(logPath(socket)),
    );
  });
});

test("a missing daemon binary: a clear error naming it", async () => {
  await withSocket(async (socket, dir) => {
    const missing = path.join(dir, "no-such-hearthd");
    await assert.rejects(
      connectOrStart(opts(socket, { daemon: missing })),
      (e: unknown) => e instanceof StartError && e.kind === "spawn" && e.message.includes(missing),
    );
    await assert.rejects(
      connectOrStart({ path: socket, env: cleanEnv({ HEARTHD: "", PATH: dir }) }),
      (e: unknown) => e instanceof StartError && e.kind === "not_found",
    );
  });
});

test("HEARTH_NO_START=1 and start: false fail like connect", async () => {
  await withSocket(async (socket) => {
    const isEnoent = (e: NodeJS.ErrnoException) => e.code === "ENOENT" && e.message.includes(socket);
    await assert.rejects(connectOrStart(opts(socket, { env: cleanEnv({ HEARTH_NO_START: "1" }) })), isEnoent);
    await assert.rejects(connectOrStart(opts(socket, { start: false })), isEnoent);
    assert.ok(!fs.existsSync(logPath(socket)), "nothing was started");
    assert.deepEqual(daemonPids(socket), []);
  });
});

test("a file that is not a socket is reported as it is, not started over", async () => {
  await withSocket(async (socket) => {
    fs.writeFileSync(socket, "not a socket");
    await assert.rejects(connectOrStart(opts(socket)), (e: NodeJS.ErrnoException) => e.code === "ECONNREFUSED");
    assert.ok(!fs.existsSync(logPath(socket)), "nothing was started");
  });
});

test("a folder hearthd would refuse is refused with advice", async () => {
  await withSocket(async (_s, dir) => {
    const shared = path.join(dir, "shared");
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o777);
    const socket = path.join(shared, "hearthd.sock");
    await assert.rejects(
      connectOrStart(opts(socket)),
      (e: unknown) =>
        e instanceof StartError && e.kind === "unsafe_folder" && e.message.includes(path.join(shared, `hearth-${os.userInfo().uid}`)),
    );
    assert.equal(fs.statSync(shared).mode & 0o777, 0o777, "an existing folder is never changed");
    const link = path.join(dir, "link");
    fs.symlinkSync(dir, link);
    await assert.rejects(
      connectOrStart(opts(path.join(link, "hearthd.sock"))),
      (e: unknown) => e instanceof StartError && e.kind === "unsafe_folder" && e.message.includes("symbolic link"),
    );
    assert.ok(!fs.existsSync(path.join(dir, "hearthd.sock.start")) && !fs.existsSync(logPath(path.join(dir, "x"))), "nothing made");
  });
});

test("a daemon of another build is replaced; HEARTH_NO_REPLACE=1 and version 1 keep it", async () => {
  await withSocket(async (socket) => {
    const old = await connectOrStart(opts(socket, { buildId: "old" }));
    assert.equal(old.hello.buildId, "old");
    const [oldPid] = daemonPids(socket);

    const kept = await connectOrStart(opts(socket, { buildId: "new", env: cleanEnv({ HEARTH_NO_REPLACE: "1" }) }));
    assert.equal(kept.hello.buildId, "old");
    await kept.close();
    const keptToo = await connectOrStart(opts(socket, { buildId: "new", replaceStale: false }));
    assert.equal(keptToo.hello.buildId, "old");
    await keptToo.close();
    const v1 = await connectOrStart(opts(socket, { buildId: "new", protocol: 1 }));
    assert.equal(v1.version, 1);
    await v1.close();
    assert.deepEqual(daemonPids(socket), [oldPid]);

    const fresh = await connectOrStart(opts(socket, { buildId: "new" }));
    assert.equal(fresh.hello.buildId, "new");
    await old.closed; // the old daemon shut down, ending our connection to it
    const pids = daemonPids(socket);
    assert.equal(pids.length, 1);
    assert.notEqual(pids[0], oldPid);
    await fresh.close();
  });
});

test("node processes starting at the same moment: the daemon's lock leaves one", async () => {
  await withSocket(async (socket) => {
    const index = path.resolve(__dirname, "..", "index.js");
    const script = `require(${JSON.stringify(index)}).connectOrStart({ path: process.argv[1], daemon: process.argv[2] })
      .then(async (c) => { console.log(c.hello.server); await c.close(); }, (e) => { console.error(e.message); process.exit(1); });`;
    const runs = Array.from({ length: 6 }, () => {
      const p = spawn(process.execPath, ["-e", script, socket, HEARTHD], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      p.stdout!.on("data", (d) => (out += d));
      p.stderr!.on("data", (d) => (out += d));
      return new Promise<string>((resolve) => p.once("exit", (code) => resolve(`${code} ${out}`)));
    });
    for (const r of await Promise.all(runs)) assert.match(r, /^0 hearthd /);
    assert.equal(daemonPids(socket).length, 1);
    const log = fs.readFileSync(logPath(socket), "utf8");
    assert.equal(log.split("ready on").length - 1, 1, log);
  });
});

/**
 * A fake daemon that answers `$/hello` with `hello` (no build_id) and, asked to `shutdown`,
 * answers and stops listening: stands in for a hearthd from before build ids.
 */
function fakeDaemon(socket: string, hello: Record<string, unknown>): Promise<{ shutdown: Promise<void>; stop(): Promise<void> }> {
  const enc = new Encoder();
  const frame = (v: unknown) => {
    const body = enc.encode(v);
    const b = Buffer.alloc(4 + body.length);
    b.writeUInt32BE(body.length, 0);
    b.set(body, 4);
    return b;
  };
  const conns = new Set<net.Socket>();
  let shut!: () => void;
  const shutdown = new Promise<void>((r) => (shut = r));
  const server = net.createServer((s) => {
    conns.add(s);
    s.on("close", () => conns.delete(s));
    s.on("error", () => {});
    const reader = new FrameReader();
    s.on("data", (d) =>
      reader.feed(d, (body) => {
        const env = decodeEnvelope(unpack(body));
        if (env.kind !== 0) return;
        if (env.method === "$/hello") s.write(frame([env.version, 1, env.id, null, hello]));
        else if (env.method === "shutdown") {
          s.write(frame([env.version, 1, env.id, null, null]));
          stop().then(shut);
        } else s.write(frame([env.version, 1, env.id, { code: -32601, message: "no" }, null]));
      }),
    );
  });
  const stop = () =>
    new Promise<void>((r) => {
      for (const c of conns) c.destroy();
      server.close(() => r()); // unlinks the socket file
    });
  return new Promise((resolve) => server.listen(socket, () => resolve({ shutdown, stop })));
}

test("a hearthd without build_id (older than the key) is replaced; another server is never", async () => {
  await withSocket(async (socket) => {
    const old = await fakeDaemon(socket, { protocol: 2, server: "hearthd 0.0.1", supported: [1, 2] });
    try {
      const c = await connectOrStart(opts(socket));
      assert.ok(c.hello.buildId !== undefined, "connected to a real hearthd, which announces its build");
      await old.shutdown; // the fake was asked to go
      assert.equal(daemonPids(socket).length, 1);
      await c.close();
    } finally {
      await old.stop(); // a failure must not leave it listening (and the test process alive)
    }
    await killDaemons(socket);
    fs.rmSync(socket, { force: true }); // a killed daemon leaves its socket file

    const other = await fakeDaemon(socket, { protocol: 2, server: "not-hearthd 9", supported: [2] });
    try {
      const d = await connectOrStart(opts(socket, { buildId: "new" }));
      assert.equal(d.hello.server, "not-hearthd 9");
      await d.close();
      assert.deepEqual(daemonPids(socket), []);
    } finally {
      await other.stop();
    }
  });
});

test("10 clients of a new build at once replace the old daemon once", async () => {
  await withSocket(async (socket) => {
    const old = await connectOrStart(opts(socket, { buildId: "old" }));
    const [oldPid] = daemonPids(socket);
    const settled = await Promise.allSettled(Array.from({ length: 10 }, () => connectOrStart(opts(socket, { buildId: "new" }))));
    const fresh: Client[] = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    assert.deepEqual(
      settled.flatMap((r) => (r.status === "rejected" ? [r.reason] : [])),
      [],
    );
    for (const c of fresh) assert.equal(c.hello.buildId, "new");
    await old.closed;
    const pids = daemonPids(socket);
    assert.equal(pids.length, 1);
    assert.notEqual(pids[0], oldPid);
    assert.equal(Number(((await fresh[0].call("$/stats")) as Record<string, unknown>).connections), 10);
    await Promise.all(fresh.map((c) => c.close()));
  });
});

test("without a path, the socket follows HEARTH_SOCKET of the env option", async () => {
  await withSocket(async (socket) => {
    const env = cleanEnv({ HEARTH_SOCKET: socket });
    await assert.rejects(
      connectOrStart({ daemon: HEARTHD, env: { ...env, HEARTH_NO_START: "1" } }),
      (e: NodeJS.ErrnoException) => e.code === "ENOENT" && e.message.includes(socket),
    );
    const c = await connectOrStart({ daemon: HEARTHD, env });
    assert.equal(c.path, socket);
    assert.equal(daemonPids(socket).length, 1);
    await c.close();
  });
});
