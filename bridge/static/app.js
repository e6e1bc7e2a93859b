// hearth bridge demo page: talks protocol version 2 over the bridge's WebSocket (/v2/ws), one
// MessagePack envelope per binary message, exactly as on the daemon's socket. It shows the
// daemon's $/hello and $/stats, and — when the daemon serves the language service — sends
// doc/open and doc/change as you type, with a complete (supersede "complete", deadline 500 ms)
// whose items and round-trip latency it shows. The page never sees the token: the WebSocket
// is authenticated by the HttpOnly cookie the printed URL set. MessagePack is hand-written
// below (the subset the protocol uses), so nothing external is loaded.
'use strict';

// ---- MessagePack: encode ----
const enc = new TextEncoder();
const dec = new TextDecoder();

function encode(value) {
  const out = [];
  const u8 = (b) => out.push(b & 0xff);
  const be = (n, bytes) => { for (let i = bytes - 1; i >= 0; i--) u8(Math.floor(n / 2 ** (8 * i))); };
  const walk = (v) => {
    if (v === null || v === undefined) u8(0xc0);
    else if (v === false) u8(0xc2);
    else if (v === true) u8(0xc3);
    else if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= 0xffffffff) {
      if (v >= 0) {
        if (v < 0x80) u8(v);
        else if (v < 0x100) { u8(0xcc); u8(v); }
        else if (v < 0x10000) { u8(0xcd); be(v, 2); }
        else { u8(0xce); be(v, 4); }
      } else if (v >= -32) u8(0x100 + v);
      else if (v >= -0x80) { u8(0xd0); u8(0x100 + v); }
      else if (v >= -0x8000) { u8(0xd1); be(0x10000 + v, 2); }
      else { u8(0xd2); be(0x100000000 + v, 4); }
    } else if (typeof v === 'number') {
      const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, v);
      u8(0xcb); for (let i = 0; i < 8; i++) u8(b.getUint8(i));
    } else if (typeof v === 'string') {
      const bytes = enc.encode(v); const n = bytes.length;
      if (n < 32) u8(0xa0 | n);
      else if (n < 0x100) { u8(0xd9); u8(n); }
      else if (n < 0x10000) { u8(0xda); be(n, 2); }
      else { u8(0xdb); be(n, 4); }
      for (const b of bytes) out.push(b);
    } else if (v instanceof Uint8Array) {
      const n = v.length;
      if (n < 0x100) { u8(0xc4); u8(n); } else if (n < 0x10000) { u8(0xc5); be(n, 2); } else { u8(0xc6); be(n, 4); }
      for (const b of v) out.push(b);
    } else if (Array.isArray(v)) {
      const n = v.length;
      if (n < 16) u8(0x90 | n); else if (n < 0x10000) { u8(0xdc); be(n, 2); } else { u8(0xdd); be(n, 4); }
      v.forEach(walk);
    } else {
      const keys = Object.keys(v); const n = keys.length;
      if (n < 16) u8(0x80 | n); else if (n < 0x10000) { u8(0xde); be(n, 2); } else { u8(0xdf); be(n, 4); }
      for (const k of keys) { walk(k); walk(v[k]); }
    }
  };
  walk(value);
  return new Uint8Array(out);
}

// ---- MessagePack: decode ----
function decode(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n) => { if (at + n > bytes.length) throw new Error('truncated MessagePack'); };
  const uint = (n) => { need(n); let v = 0; for (let i = 0; i < n; i++) v = v * 256 + bytes[at++]; return v; };
  const str = (n) => { need(n); const s = dec.decode(bytes.subarray(at, at + n)); at += n; return s; };
  const bin = (n) => { need(n); const b = bytes.slice(at, at + n); at += n; return b; };
  const arr = (n) => { const a = []; for (let i = 0; i < n; i++) a.push(value()); return a; };
  const map = (n) => { const m = {}; for (let i = 0; i < n; i++) { const k = value(); m[String(k)] = value(); } return m; };
  const value = () => {
    need(1);
    const t = bytes[at++];
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if ((t & 0xf0) === 0x80) return map(t & 0x0f);
    if ((t & 0xf0) === 0x90) return arr(t & 0x0f);
    if ((t & 0xe0) === 0xa0) return str(t & 0x1f);
    let v;
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(uint(1));
      case 0xc5: return bin(uint(2));
      case 0xc6: return bin(uint(4));
      case 0xc7: { const n = uint(1); at += 1; return { ext: bin(n) }; }
      case 0xc8: { const n = uint(2); at += 1; return { ext: bin(n) }; }
      case 0xc9: { const n = uint(4); at += 1; return { ext: bin(n) }; }
      case 0xca: need(4); v = view.getFloat32(at); at += 4; return v;
      case 0xcb: need(8); v = view.getFloat64(at); at += 8; return v;
      case 0xcc: return uint(1);
      case 0xcd: return uint(2);
      case 0xce: return uint(4);
      case 0xcf: need(8); v = Number(view.getBigUint64(at)); at += 8; return v;
      case 0xd0: need(1); v = view.getInt8(at); at += 1; return v;
      case 0xd1: need(2); v = view.getInt16(at); at += 2; return v;
      case 0xd2: need(4); v = view.getInt32(at); at += 4; return v;
      case 0xd3: need(8); v = Number(view.getBigInt64(at)); at += 8; return v;
      case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {
        const n = [1, 2, 4, 8, 16][t - 0xd4]; at += 1; return { ext: bin(n) };
      }
      case 0xd9: return str(uint(1));
      case 0xda: return str(uint(2));
      case 0xdb: return str(uint(4));
      case 0xdc: return arr(uint(2));
      case 0xdd: return arr(uint(4));
      case 0xde: return map(uint(2));
      case 0xdf: return map(uint(4));
      default: throw new Error('unknown MessagePack type 0x' + t.toString(16));
    }
  };
  return value();
}

// ---- protocol version 2 over the WebSocket ----
const $ = (id) => document.getElementById(id);
const pending = new Map(); // id -> {resolve, reject}
let nextId = 1;
let ws = null;

class RemoteError extends Error {
  constructor(e) { super(e && e.message); this.code = e && e.code; this.data = e && e.data; }
}

function call(method, params, opts) {
  return new Promise((resolve, reject) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) { reject(new Error('not connected')); return; }
    const id = nextId++;
    pending.set(id, { resolve, reject });
    const envelope = opts ? [2, 0, id, method, params, opts] : [2, 0, id, method, params];
    ws.send(encode(envelope));
  });
}

function notify(method, params) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(encode([2, 2, method, params]));
}

function onMessage(event) {
  let msg;
  try { msg = decode(event.data); } catch (e) { note('unreadable message: ' + e.message); return; }
  if (!Array.isArray(msg) || msg[0] !== 2) return;
  const kind = msg[1];
  if (kind === 1) { // response [2, 1, id, error, result]
    const p = pending.get(msg[2]);
    if (!p) return;
    pending.delete(msg[2]);
    if (msg[3] !== null) p.reject(new RemoteError(msg[3])); else p.resolve(msg[4]);
  } else if (kind === 0) { // a request from the daemon: this page serves no methods
    ws.send(encode([2, 1, msg[2], { code: -32601, message: 'the demo page serves no methods' }, null]));
  } else if (kind === 2) { // notification
    if (msg[2] === '$/error' || msg[2] === '$/fatal') note(msg[2] + ': ' + JSON.stringify(msg[3]));
  }
}

function note(text) { $('notes').textContent = text; }

// ---- the page ----
let serves = new Set();
let version = 0;
const uri = 'file:///hearth-bridge-demo/main.rs';

function connect() {
  ws = new WebSocket(`ws://${location.host}/v2/ws`);
  ws.binaryType = 'arraybuffer';
  ws.onmessage = onMessage;
  ws.onopen = async () => {
    $('status').textContent = 'open';
    try {
      const hello = await call('$/hello', { client: 'hearth bridge demo page' });
      serves = new Set(hello.methods || []);
      $('hello').textContent = `${hello.server} · protocol ${hello.protocol} · ${serves.size} methods`;
      if (!serves.has('complete')) {
        $('complete-status').textContent =
          'complete is not served by this daemon (-32601): start a hearthd with the language service';
      }
    } catch (e) { $('hello').textContent = 'hello failed: ' + e.message; }
    refreshStats();
  };
  ws.onclose = (e) => {
    $('status').textContent = `closed (${e.code}${e.reason ? ': ' + e.reason : ''})`;
    for (const p of pending.values()) p.reject(new Error('connection closed'));
    pending.clear();
  };
}

async function refreshStats() {
  try {
    const stats = await call('$/stats', null);
    $('stats').textContent = JSON.stringify(stats, null, 2);
  } catch (e) { $('stats').textContent = 'stats: ' + e.message; }
}

function position(text, offset) {
  // Zero-based line and UTF-16 column: JavaScript string indices are UTF-16 code units.
  const before = text.slice(0, offset);
  const lines = before.split(/\r\n|\r|\n/);
  return { line: lines.length - 1, character: lines[lines.length - 1].length };
}

async function onInput() {
  const editor = $('editor');
  const text = editor.value;
  version += 1;
  if (version === 1) notify('doc/open', { uri, text, version, language: 'rust' });
  else notify('doc/change', { uri, version, changes: [{ text }] });
  const started = performance.now();
  try {
    const result = await call('complete', { uri, position: position(text, editor.selectionStart), limit: 20 },
      { supersede: 'complete', deadline_ms: 500 });
    const ms = performance.now() - started;
    $('latency').textContent = ms.toFixed(1) + ' ms';
    const items = (result && result.items) || [];
    $('complete-status').textContent = `${items.length} item(s) for "${(result && result.prefix) || ''}"`;
    const list = $('completions');
    list.replaceChildren(...items.map((item) => {
      const li = document.createElement('li');
      li.textContent = item.label;
      if (item.detail) {
        const d = document.createElement('span'); d.className = 'detail'; d.textContent = item.detail; li.append(d);
      }
      return li;
    }));
  } catch (e) {
    if (e.code === -32801) return; // superseded by the next keystroke: no answer needed
    if (e.code === -32002) { $('complete-status').textContent = 'deadline exceeded (-32002)'; return; }
    if (e.code === -32601) {
      $('complete-status').textContent =
        'complete is not served by this daemon (-32601): start a hearthd with the language service';
      return;
    }
    $('complete-status').textContent = `error ${e.code !== undefined ? e.code + ' ' : ''}${e.message}`;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('editor').addEventListener('input', onInput);
  connect();
  setInterval(() => { if (ws && ws.readyState === WebSocket.OPEN) refreshStats(); }, 2000);
});
