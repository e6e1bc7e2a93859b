"""A small closed-loop load mode: ``python -m hearth_client.bench --in-flight N --duration S
[--socket P] [--size B]``.

N workers share one connection; each sends ``echo`` with a B-byte string and sends the next
call as soon as the answer arrives. Prints calls/s and the p50/p99 latency. It owns only the
measurement; point it at a daemon you started (by default the socket path rule finds it).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from .session import connect


async def run(in_flight: int, duration: float, socket: str | None, size: int) -> str:
    c = await connect(socket, client="hearth_client bench")
    payload = "x" * size
    lat: list[float] = []
    end = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await c.call("echo", payload)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    secs = time.perf_counter() - t0
    await c.close()
    lat.sort()

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    return (f"protocol v{c.version}, in-flight {in_flight}, {secs:.1f} s: {len(lat)} calls, "
            f"{len(lat) / secs:.0f} calls/s, p50 {q(0.5) * 1e6:.0f} us, p99 {q(0.99) * 1e6:.0f} us")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m hearth_client.bench", description=__doc__)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--socket", default=None)
    ap.add_argument("--size", type=int, default=16)
    a = ap.parse_args()
    print(asyncio.run(run(a.in_flight, a.duration, a.socket, a.size)))


if __name__ == "__main__":
    main()
