/**
 * hearth-client: a Node client for hearthd (docs/PROTOCOL.md, versions 1 and 2).
 *
 * This file only gathers the public names. `wire.ts` holds the path rule, framing and
 * envelopes (no I/O), `client.ts` the connection, `errors.ts` the error classes, and
 * `bench.ts` a closed-loop load mode.
 *
 *     const c = await connect();
 *     console.log(await c.call("echo", { hi: 1 }, { deadline: 500 }));
 */

export { Client, connect } from "./client";
export type { CallOptions, CallStream, ConnectOptions, Disposable, Handler, ServeContext } from "./client";
export {
  Codes,
  ConnectionLostError,
  DeadlineExceededError,
  FrameError,
  HearthError,
  RequestCancelledError,
  SupersededError,
  isCancelled,
  isDeadline,
  isSuperseded,
} from "./errors";
export { DEFAULT_MAX_FRAME, FrameReader, decodeEnvelope, parseHello, socketPath, unpack } from "./wire";
export type { Envelope, Hello, Id } from "./wire";
