/**
 * The errors a hearth call can reject with, and nothing else.
 *
 * {@link HearthError} is an error answer from the daemon (code, message, data), with
 * subclasses for the codes callers treat specially: superseded (-32801), deadline exceeded
 * (-32002) and cancelled by the daemon (-32800). {@link ConnectionLostError} means the
 * connection ended with the call unanswered (every pending call gets it at once);
 * {@link FrameError} is a frame header that can never be valid. A call the caller aborted
 * through its `AbortSignal` rejects with the signal's reason, as platform APIs do.
 */

export const Codes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  RequestCancelled: -32800,
  Superseded: -32801,
  ServerBusy: -32001,
  DeadlineExceeded: -32002,
  ShuttingDown: -32003,
  UnsupportedVersion: -32004,
  FrameTooLarge: -32005,
  EmptyFrame: -32006,
} as const;

/**
 * An error answer from the daemon (or from the client's own version 1 emulation): `code`,
 * `message` exactly as the daemon sent it, and `data` if any.
 */
export class HearthError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "HearthError";
  }

  /** The message as the daemon sent it (the same as `message`). */
  get rawMessage(): string {
    return this.message;
  }

  override toString(): string {
    return `${this.name} ${this.code}: ${this.message}`;
  }

  get isSuperseded(): boolean {
    return this.code === Codes.Superseded;
  }
  get isDeadline(): boolean {
    return this.code === Codes.DeadlineExceeded;
  }
  get isCancelled(): boolean {
    return this.code === Codes.RequestCancelled;
  }

  /** The right subclass for an error map off the wire. */
  static from(e: { code: number | bigint; message: string; data?: unknown }): HearthError {
    const code = Number(e.code);
    switch (code) {
      case Codes.Superseded:
        return new SupersededError(e.message, e.data);
      case Codes.DeadlineExceeded:
        return new DeadlineExceededError(e.message, e.data);
      case Codes.RequestCancelled:
        return new RequestCancelledError(e.message, e.data);
      default:
        return new HearthError(code, e.message, e.data);
    }
  }
}

export class SupersededError extends HearthError {
  constructor(message = "superseded", data?: unknown) {
    super(Codes.Superseded, message, data);
    this.name = "SupersededError";
  }
}

export class DeadlineExceededError extends HearthError {
  constructor(message = "deadline exceeded", data?: unknown) {
    super(Codes.DeadlineExceeded, message, data);
    this.name = "DeadlineExceededError";
  }
}

export class RequestCancelledError extends HearthError {
  constructor(message = "request cancelled", data?: unknown) {
    super(Codes.RequestCancelled, message, data);
    this.name = "RequestCancelledError";
  }
}

/** True for a superseded answer (-32801). */
export const isSuperseded = (e: unknown): boolean => e instanceof HearthError && e.isSuperseded;
/** True for a deadline answer (-32002). */
export const isDeadline = (e: unknown): boolean => e instanceof HearthError && e.isDeadline;
/** True for a cancelled answer (-32800) or a call aborted through its signal. */
export const isCancelled = (e: unknown): boolean =>
  (e instanceof HearthError && e.isCancelled) || (e instanceof Error && e.name === "AbortError");

/** The connection ended before the call was answered. */
export class ConnectionLostError extends Error {
  constructor(
    readonly reason: string,
    /** The `$/fatal` the daemon sent before closing, if any. */
    readonly fatal?: { code: number; message: string; supported: number[] },
  ) {
    super(reason);
    this.name = "ConnectionLostError";
  }
}

/** A frame header that can never be valid: zero length, or above `maxFrame`. */
export class FrameError extends Error {
  constructor(
    readonly kind: "empty_frame" | "frame_too_large",
    message: string,
  ) {
    super(message);
    this.name = "FrameError";
  }
}
