/**
 * A small closed-loop load mode: `node dist/bench.js --in-flight N --duration S [--socket P]
 * [--size B]`. N workers share one connection; each sends `echo` with a B-byte string and
 * sends the next call as soon as the answer arrives. Prints calls/s and the p50/p99 latency.
 * It owns only the measurement; the client is the library's. Point it at a daemon you
 * started yourself (by default the socket path rule finds it).
 */

import { connect } from "./client";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const inFlight = Number(arg("in-flight", "64"));
  const duration = Number(arg("duration", "5"));
  const size = Number(arg("size", "16"));
  const path = process.argv.includes("--socket") ? arg("socket", "") : undefined;
  const c = await connect({ path, client: "hearth-client bench" });
  const payload = "x".repeat(size);
  const lat: number[] = [];
  const end = performance.now() + duration * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await c.call("echo", payload);
      lat.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (performance.now() - t0) / 1000;
  await c.close();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  console.log(
    `protocol v${c.version}, in-flight ${inFlight}, ${secs.toFixed(1)} s: ${lat.length} calls, ` +
      `${Math.round(lat.length / secs)} calls/s, p50 ${(q(0.5) * 1000).toFixed(0)} us, p99 ${(q(0.99) * 1000).toFixed(0)} us`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
