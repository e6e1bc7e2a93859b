#!/usr/bin/env python3
"""clangd_typing.py: the typing workload of `hearth bench --workload typing`, driven against
clangd over stdio, for context beside hearth's figures (docs/PERFORMANCE.md, "Language
service"). One simulated editor opens a real C file, and types identifiers that occur in it,
one character at a time, at the end of its last function body: every keystroke sends
`textDocument/didChange` (an incremental insert) and then `textDocument/completion`. Keystrokes
fall due on a fixed schedule (--keys-per-sec); a completion's latency runs from its
keystroke's due time to its answer. Nothing is cancelled or superseded: every completion is
answered and counted. After a word is typed, its line is removed again with the next word's
first keystroke, so the file stays the original plus one line.

Quality is the share of keystrokes with 2+ characters (and not all) of the word typed at which
the word is among the first 10 items (clangd's sortText order), as hearth's bench computes it.

Usage (Debian: apt-get install -y clangd zlib1g-dev):
  python3 benches/clangd_typing.py --file /usr/share/doc/zlib1g-dev/examples/gun.c \
      --keys-per-sec 20 --duration 20
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def frame(msg):
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Lsp:
    """An LSP connection to a child process: requests get ids, a reader thread timestamps
    every response as it arrives."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.lock = threading.Lock()
        self.answers = {}  # id -> (time, message)
        self.cond = threading.Condition(self.lock)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = out.read(length)
            now = time.perf_counter()
            msg = json.loads(body)
            if "id" in msg and ("result" in msg or "error" in msg):
                with self.cond:
                    self.answers[msg["id"]] = (now, msg)
                    self.cond.notify_all()
            elif "id" in msg and "method" in msg:
                # A request from the server (e.g. workDoneProgress/create): answer it.
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def _send(self, msg):
        data = frame(msg)
        with self.lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def request(self, method, params):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid

    def notify(self, method, params):
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, rid, timeout=60.0):
        deadline = time.perf_counter() + timeout
        with self.cond:
            while rid not in self.answers:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError("no answer to request %d" % rid)
                self.cond.wait(left)
            return self.answers.pop(rid)


def labels(msg):
    result = msg.get("result") or {}
    items = result.get("items", []) if isinstance(result, dict) else result
    items = sorted(items, key=lambda i: i.get("sortText", i.get("label", "")))
    return [(i.get("filterText") or i.get("insertText") or i.get("label", "")).strip()
            for i in items]


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    rank = max(1, int(-(-q * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", required=True, help="the C file to type into")
    ap.add_argument("--clangd", default="clangd")
    ap.add_argument("--keys-per-sec", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds typed, not counted")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="clangd-typing-")
    path = os.path.join(work, os.path.basename(args.file))
    shutil.copyfile(args.file, path)
    text = open(path, encoding="utf-8", errors="replace").read()
    lines = text.split("\n")
    # Type at the end of the last function body: before the file's last line that is "}".
    at_line = max(i for i, l in enumerate(lines) if l.startswith("}"))
    words = sorted({w for w in re.findall(r"\b[A-Za-z_][A-Za-z0-9_]{3,31}\b", text)})
    uri = "file://" + path

    lsp = Lsp([args.clangd, "--log=error", "--background-index=false", "--limit-results=50",
               "--header-insertion=never"])
    rid = lsp.request("initialize", {
        "processId": os.getpid(), "rootUri": "file://" + work,
        "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": False}}}},
    })
    lsp.wait(rid)
    lsp.notify("initialized", {})
    lsp.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "c", "version": 1, "text": text}})
    version = 1
    # One completion before the clock starts: clangd builds the file's preamble for it.
    rid = lsp.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": at_line, "character": 0}})
    lsp.wait(rid, timeout=300)
    server = subprocess.run([args.clangd, "--version"], capture_output=True, text=True).stdout
    server = next((l.strip() for l in server.splitlines() if "clangd version" in l), "clangd")

    interval = 1.0 / args.keys_per_sec
    warmup_keys = int(args.warmup * args.keys_per_sec)
    total = warmup_keys + int(args.duration * args.keys_per_sec)
    word, typed, has_line = "", 0, False
    sent = []  # (rid, due, measured, word, typed)
    start = time.perf_counter() + 0.05
    for k in range(total):
        due = start + k * interval
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if typed == len(word):
            word, typed = rng.choice(words), 0
        c = word[typed]
        version += 1
        if typed == 0:
            # A new line for the word; the previous word's line goes.
            end = {"line": at_line + 1, "character": 0} if has_line else {"line": at_line, "character": 0}
            change = {"range": {"start": {"line": at_line, "character": 0}, "end": end},
                      "text": "    " + c + "\n"}
            has_line = True
        else:
            pos = {"line": at_line, "character": 4 + typed}
            change = {"range": {"start": pos, "end": pos}, "text": c}
        typed += 1
        lsp.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [change]})
        rid = lsp.request("textDocument/completion", {
            "textDocument": {"uri": uri},
            "position": {"line": at_line, "character": 4 + typed}})
        sent.append((rid, due, k >= warmup_keys, word, typed))

    latencies, judged, hits, missing = [], 0, 0, 0
    for rid, due, measured, w, t in sent:
        try:
            when, msg = lsp.wait(rid, timeout=120)
        except TimeoutError:
            missing += 1
            continue
        if not measured:
            continue
        latencies.append((when - due) * 1e6)
        if 2 <= t < len(w):
            judged += 1
            hits += w in labels(msg)[:10]
    lsp.proc.kill()
    shutil.rmtree(work, ignore_errors=True)

    latencies.sort()
    report = {
        "server": server, "file": args.file, "keys_per_sec": args.keys_per_sec,
        "keystrokes": len(latencies), "unanswered": missing,
        "p50_us": percentile(latencies, 0.5), "p90_us": percentile(latencies, 0.9),
        "p99_us": percentile(latencies, 0.99), "p999_us": percentile(latencies, 0.999),
        "max_us": latencies[-1] if latencies else None,
        "quality": hits / judged if judged else None,
    }
    if args.json:
        print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in report.items()}))
    else:
        ms = lambda us: "%.3f ms" % (us / 1e3) if us is not None else "-"
        print("%s: %d keystrokes at %g keys/s into %s" % (server, len(latencies), args.keys_per_sec, args.file))
        print("latency: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s" % tuple(
            ms(report[k]) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")))
        print("quality: %s" % (("%.3f" % report["quality"]) if report["quality"] is not None else "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
