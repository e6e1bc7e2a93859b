/**
 * hearth-client: a Node client for hearthd (docs/PROTOCOL.md, versions 1 and 2).
 *
 * This file only gathers the public names. `wire.ts` holds the path rule, framing and
 * envelopes (no I/O), `client.ts` the connection, `start.ts` starting hearthd on first use,
 * `errors.ts` the error classes, and `bench.ts` a closed-loop load mode.
 *
 *     const c = await connectOrStart(); // or connect(), which never starts a daemon
 *     console.log(await c.call("echo", { hi: 1 }, { deadline: 500 }));
 */

export { Client, connect } from "./client";
export type { CallOptions, CallStream, ConnectOptions, Disposable, Handler, ServeContext } from "./client";
export {
  BUILD_ID_ENV,
  DAEMON_ENV,
  DEFAULT_IDLE_EXIT,
  NO_REPLACE_ENV,
  NO_START_ENV,
  StartError,
  buildIdMatches,
  connectOrStart,
  expectedBuildId,
  fileHash,
  findDaemon,
  identityHash,
  logPath,
} from "./start";
export type { StartErrorKind, StartOptions } from "./start";
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
