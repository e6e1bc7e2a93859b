/**
 * Runs every scenario of conformance/scenarios.json with the Node client: "hearthd" ones
 * against a real daemon started for the scenario, "scripted" ones against the fake daemon of
 * support.ts playing the scenario's script. The step language is described in
 * conformance/README.md; this file is its Node interpreter.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, connect } from "../client";
import { ConnectionLostError, HearthError } from "../errors";
import { Daemon, ScriptedPeer, guard, loadJson, matches, norm, spawnDaemon } from "./support";

const GUARD_MS = 15000;

interface Entry {
  ac: AbortController;
  outcome: Promise<{ ok: true; value: any } | { ok: false; error: any }>;
}

async function runSteps(steps: any[], socket: string, daemon: Daemon | undefined, needs: number): Promise<void> {
  let client: Client | undefined;
  const calls = new Map<string, Entry>();
  const served: Array<{ method: string; params: unknown }> = [];
  const notes: Array<{ method: string; params: unknown; listened: boolean }> = [];
  const listened = new Set<string>();
  const run = async (list: any[]): Promise<void> => {
    for (const step of list) {
      const where = JSON.stringify(step);
      switch (step.op) {
        case "connect": {
          client = await guard(connect({ path: socket, client: "conformance.js" }), GUARD_MS, "connect");
          if (client.hello.protocol < needs) {
            assert.fail(`this scenario needs a version ${needs} hearthd; ${client.hello.server} speaks ${client.hello.protocol}`);
          }
          client.onNotification(null, (method: string, params: unknown) => notes.push({ method, params, listened: listened.has(method) }));
          if (step.expect?.version !== undefined) assert.equal(client.version, step.expect.version, where);
          for (const k of step.expect?.hello_keys ?? []) assert.ok(k in client.hello.raw, `${where}: hello has ${k}`);
          break;
        }
        case "call": {
          const ac = new AbortController();
          const opts = { signal: ac.signal, deadline: step.deadline_ms, supersede: step.supersede };
          let p: Promise<any>;
          if (step.stream) {
            const s = client!.stream(step.method, step.params, opts);
            p = (async () => {
              const chunks: unknown[] = [];
              for await (const c of s) chunks.push(norm(c));
              return { chunks, dropped: s.dropped, result: norm(await s.result) };
            })();
          } else {
            p = client!.call(step.method, step.params, opts).then((r) => ({ result: norm(r) }));
          }
          calls.set(step.as, { ac, outcome: p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false as const, error })) });
          break;
        }
        case "abort":
          calls.get(step.call)!.ac.abort();
          break;
        case "await": {
          const out = await guard(calls.get(step.call)!.outcome, GUARD_MS, where);
          const e = step.expect;
          if ("result" in e || "chunks" in e || "result_subset" in e) {
            assert.ok(out.ok, `${where}: failed with ${!out.ok && out.error}`);
            const v = out.value;
            if ("result" in e) assert.deepStrictEqual(v.result, e.result, where);
            if ("result_subset" in e) assert.ok(matches(v.result, e.result_subset), `${where}: got ${JSON.stringify(v.result)}`);
            if ("chunks" in e) assert.deepStrictEqual(v.chunks, e.chunks, where);
            if ("dropped" in e) assert.equal(v.dropped, e.dropped, where);
          } else {
            assert.ok(!out.ok, `${where}: succeeded with ${out.ok && JSON.stringify(out.value)}`);
            const err = out.error;
            if ("error" in e) {
              assert.ok(err instanceof HearthError, `${where}: ${err}`);
              assert.equal(err.code, e.error, where);
              if ("message" in e) assert.equal(err.rawMessage, e.message, where);
              if ("data" in e) assert.deepStrictEqual(norm(err.data), e.data, where);
            }
            if (e.aborted) assert.equal(err.name, "AbortError", `${where}: ${err}`);
            if (e.lost) assert.ok(err instanceof ConnectionLostError, `${where}: ${err}`);
            if ("fatal_code" in e) assert.equal(err.fatal?.code, e.fatal_code, where);
          }
          break;
        }
        case "await_idle":
          await guard(client!.idle(), GUARD_MS, where);
          assert.equal(client!.inFlight, 0);
          break;
        case "serve":
          client!.serve(step.method, (params) => {
            served.push({ method: step.method, params: norm(params) });
            if (step.hang) return new Promise(() => {});
            if (step.error) throw new HearthError(step.error.code, step.error.message);
            return step.result;
          });
          break;
        case "expect_served":
          assert.ok(served.some((s) => s.method === step.method && matches(s.params, step.params)), `${where}: served ${JSON.stringify(served)}`);
          break;
        case "listen":
          listened.add(step.method);
          break;
        case "expect_notified":
          assert.ok(notes.some((n) => n.listened && n.method === step.method && matches(norm(n.params), step.params)), where);
          break;
        case "expect_notified_any":
          assert.ok(notes.some((n) => n.method === step.method && matches(norm(n.params), step.params)), where);
          break;
        case "await_closed":
          await guard(client!.closed, GUARD_MS, where);
          break;
        case "kill_daemon":
          await daemon!.kill();
          break;
        case "close":
          await client!.close();
          break;
        case "repeat":
          for (let i = 0; i < step.times; i++) await run(step.steps);
          break;
        default:
          assert.fail(`unknown step ${where}`);
      }
    }
  };
  try {
    await run(steps);
  } finally {
    await client?.close();
  }
}

const scenarios = loadJson("scenarios.json").scenarios;

for (const sc of scenarios) {
  test(`scenario ${sc.name} (${sc.peer})`, async () => {
    if (sc.peer === "hearthd") {
      const daemon = await spawnDaemon(sc.daemon_args ?? []);
      try {
        await runSteps(sc.steps, daemon.socket, daemon, sc.needs ?? 1);
      } finally {
        await daemon.kill();
      }
    } else {
      const peer = new ScriptedPeer();
      await peer.listen();
      try {
        const script = peer.run(sc.script);
        script.catch(() => {});
        await runSteps(sc.steps, peer.socket, undefined, 1);
        await guard(script, GUARD_MS, `${sc.name}: the peer's script`);
      } finally {
        await peer.stop();
      }
    }
  });
}

test("every scenario has a known peer", () => {
  assert.ok(scenarios.length >= 15);
  for (const sc of scenarios) assert.ok(["hearthd", "scripted"].includes(sc.peer), sc.name);
});
