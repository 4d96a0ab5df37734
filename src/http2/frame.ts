/**
 * HTTP/2 frames (RFC 9113 §4, §6): constants, encoders and a validating decoder.
 *
 * A pure wire module: no I/O, no timers. Decoding is two steps, as a read loop needs it:
 * {@linkcode decodeFrameHeader} on the fixed 9 bytes (so the payload length can be
 * checked against SETTINGS_MAX_FRAME_SIZE before reading it), then
 * {@linkcode decodeFrame} on the payload, which checks the per-type rules and throws an
 * {@linkcode Http2Error} carrying the code the RFC prescribes. A thrown error with a
 * `streamId` is a stream error; without one, a connection error.
 *
 * @module
 */

import { errorCodeValue, Http2Error, type Http2ErrorCode } from "./errors.ts";

/** Size of the fixed frame header: length (24 bits), type, flags, stream id (§4.1). */
export const FRAME_HEADER_SIZE = 9;

/** The client connection preface, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (§3.4). */
export const CONNECTION_PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame type codes (§6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (§6). `ACK` shares its bit with `END_STREAM`; the frame type decides. */
export const FrameFlag = {
  /** DATA, HEADERS: the last frame the sender sends on this stream. */
  END_STREAM: 0x1,
  /** SETTINGS, PING: an acknowledgement. */
  ACK: 0x1,
  /** HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends here. */
  END_HEADERS: 0x4,
  /** DATA, HEADERS, PUSH_PROMISE: a pad length octet and padding are present. */
  PADDED: 0x8,
  /** HEADERS: exclusive flag, stream dependency and weight are present. */
  PRIORITY: 0x20,
} as const;

/** Error code values (§7), as sent in RST_STREAM and GOAWAY. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const satisfies Record<Http2ErrorCode, number>;

/** SETTINGS parameter identifiers (§6.5.2). */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Initial SETTINGS_HEADER_TABLE_SIZE (§6.5.2). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
/** Initial SETTINGS_INITIAL_WINDOW_SIZE and connection window (§6.9.2). */
export const DEFAULT_INITIAL_WINDOW_SIZE = 65535;
/** Initial SETTINGS_MAX_FRAME_SIZE, also its smallest allowed value (§6.5.2). */
export const DEFAULT_MAX_FRAME_SIZE = 16384;
/** Largest allowed SETTINGS_MAX_FRAME_SIZE, 2^24-1 (§6.5.2). */
export const MAX_MAX_FRAME_SIZE = 16777215;
/** Largest flow-control window, 2^31-1 (§6.9.1). */
export const MAX_WINDOW_SIZE = 2147483647;
/** Largest stream identifier, 2^31-1 (§5.1.1). */
export const MAX_STREAM_ID = 2147483647;

/** The fixed part of every frame. */
export interface FrameHeader {
  /** Payload length in bytes (24 bits). */
  length: number;
  /** Frame type code; unknown types are allowed here and ignored by the decoder. */
  type: number;
  /** Type-specific flags. */
  flags: number;
  /** Stream identifier (31 bits; the reserved bit is ignored). */
  streamId: number;
}

/** Stream dependency fields of HEADERS and PRIORITY (parsed, then ignored, per RFC 9113). */
export interface PriorityFields {
  /** The stream this one depends on. */
  dependency: number;
  /** Whether the dependency is exclusive. */
  exclusive: boolean;
  /** Weight 1..256. */
  weight: number;
}

/** A decoded frame, discriminated by `kind`. */
export type Frame =
  | {
    kind: "data";
    streamId: number;
    /** The data, without padding. */
    data: Uint8Array;
    endStream: boolean;
    /** Bytes of padding including the pad length octet: flow-controlled but not data. */
    padding: number;
  }
  | {
    kind: "headers";
    streamId: number;
    fragment: Uint8Array;
    endStream: boolean;
    endHeaders: boolean;
    priority: PriorityFields | undefined;
  }
  | { kind: "priority"; streamId: number; priority: PriorityFields }
  | { kind: "rst_stream"; streamId: number; errorCode: number }
  | { kind: "settings"; ack: boolean; settings: [id: number, value: number][] }
  | {
    kind: "push_promise";
    streamId: number;
    promisedStreamId: number;
    fragment: Uint8Array;
    endHeaders: boolean;
  }
  | { kind: "ping"; ack: boolean; data: Uint8Array }
  | { kind: "goaway"; lastStreamId: number; errorCode: number; debugData: Uint8Array }
  | { kind: "window_update"; streamId: number; increment: number }
  | { kind: "continuation"; streamId: number; fragment: Uint8Array; endHeaders: boolean }
  | { kind: "unknown"; type: number; streamId: number; flags: number; payload: Uint8Array };

function _connectionError(code: Http2ErrorCode, message: string): Http2Error {
  return new Http2Error(code, message);
}

function _streamError(code: Http2ErrorCode, streamId: number, message: string): Http2Error {
  return new Http2Error(code, message, { streamId });
}

function _u32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) |
    bytes[offset + 3]!) >>>
    0;
}

/**
 * Writes a frame header into `target` at `offset`.
 *
 * @param target destination, at least `offset + 9` bytes
 * @param offset where the header starts
 * @param header the fields
 */
export function writeFrameHeader(target: Uint8Array, offset: number, header: FrameHeader): void {
  const { length, type, flags, streamId } = header;
  target[offset] = (length >>> 16) & 0xff;
  target[offset + 1] = (length >>> 8) & 0xff;
  target[offset + 2] = length & 0xff;
  target[offset + 3] = type;
  target[offset + 4] = flags;
  target[offset + 5] = (streamId >>> 24) & 0x7f;
  target[offset + 6] = (streamId >>> 16) & 0xff;
  target[offset + 7] = (streamId >>> 8) & 0xff;
  target[offset + 8] = streamId & 0xff;
}

/**
 * Reads a frame header.
 *
 * @param bytes at least 9 bytes from `offset`
 * @param offset where the header starts
 * @returns the fields; the reserved stream-id bit is cleared
 */
export function decodeFrameHeader(bytes: Uint8Array, offset = 0): FrameHeader {
  if (bytes.byteLength - offset < FRAME_HEADER_SIZE) {
    throw new RangeError(`Cannot decode frame header: need 9 bytes, have ${bytes.byteLength - offset}`);
  }
  return {
    length: (bytes[offset]! << 16) | (bytes[offset + 1]! << 8) | bytes[offset + 2]!,
    type: bytes[offset + 3]!,
    flags: bytes[offset + 4]!,
    streamId: _u32(bytes, offset + 5) & 0x7fffffff,
  };
}

function _frame(type: number, flags: number, streamId: number, payloadLength: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_SIZE + payloadLength);
  writeFrameHeader(out, 0, { length: payloadLength, type, flags, streamId });
  return out;
}

/** Options for {@linkcode encodeData}. */
export interface EncodeDataOptions {
  /** Set END_STREAM. */
  endStream?: boolean;
  /** Add PADDED with this many padding bytes (0..255). */
  padLength?: number;
}

/**
 * Encodes a DATA frame (§6.1).
 *
 * @param streamId a non-zero stream
 * @param data the payload
 * @param options flags and padding
 * @returns the frame
 */
export function encodeData(streamId: number, data: Uint8Array, options: EncodeDataOptions = {}): Uint8Array {
  const pad = options.padLength;
  const extra = pad === undefined ? 0 : 1 + pad;
  let flags = options.endStream ? FrameFlag.END_STREAM : 0;
  if (pad !== undefined) flags |= FrameFlag.PADDED;
  const out = _frame(FrameType.DATA, flags, streamId, data.byteLength + extra);
  let at = FRAME_HEADER_SIZE;
  if (pad !== undefined) out[at++] = pad;
  out.set(data, at);
  return out;
}

/** Options for {@linkcode encodeHeaders}. */
export interface EncodeHeadersOptions {
  /** Set END_STREAM. */
  endStream?: boolean;
  /**
   * Set END_HEADERS (the block is complete in this frame).
   * @default {true}
   */
  endHeaders?: boolean;
  /** Add PRIORITY with these fields. */
  priority?: PriorityFields;
  /** Add PADDED with this many padding bytes (0..255). */
  padLength?: number;
}

function _writePriority(out: Uint8Array, at: number, priority: PriorityFields): void {
  const dep = (priority.dependency & 0x7fffffff) | (priority.exclusive ? 0x80000000 : 0);
  out[at] = (dep >>> 24) & 0xff;
  out[at + 1] = (dep >>> 16) & 0xff;
  out[at + 2] = (dep >>> 8) & 0xff;
  out[at + 3] = dep & 0xff;
  out[at + 4] = priority.weight - 1;
}

/**
 * Encodes a HEADERS frame (§6.2) carrying one field block fragment.
 *
 * @param streamId a non-zero stream
 * @param fragment the (start of the) HPACK field block
 * @param options flags, priority and padding
 * @returns the frame
 */
export function encodeHeaders(
  streamId: number,
  fragment: Uint8Array,
  options: EncodeHeadersOptions = {},
): Uint8Array {
  const pad = options.padLength;
  let flags = 0;
  if (options.endStream) flags |= FrameFlag.END_STREAM;
  if (options.endHeaders ?? true) flags |= FrameFlag.END_HEADERS;
  if (pad !== undefined) flags |= FrameFlag.PADDED;
  if (options.priority) flags |= FrameFlag.PRIORITY;
  const extra = (pad === undefined ? 0 : 1 + pad) + (options.priority ? 5 : 0);
  const out = _frame(FrameType.HEADERS, flags, streamId, fragment.byteLength + extra);
  let at = FRAME_HEADER_SIZE;
  if (pad !== undefined) out[at++] = pad;
  if (options.priority) {
    _writePriority(out, at, options.priority);
    at += 5;
  }
  out.set(fragment, at);
  return out;
}

/**
 * Encodes a PRIORITY frame (§6.3).
 *
 * @param streamId a non-zero stream
 * @param priority dependency and weight
 * @returns the frame
 */
export function encodePriority(streamId: number, priority: PriorityFields): Uint8Array {
  const out = _frame(FrameType.PRIORITY, 0, streamId, 5);
  _writePriority(out, FRAME_HEADER_SIZE, priority);
  return out;
}

function _writeU32(out: Uint8Array, at: number, value: number): void {
  out[at] = (value >>> 24) & 0xff;
  out[at + 1] = (value >>> 16) & 0xff;
  out[at + 2] = (value >>> 8) & 0xff;
  out[at + 3] = value & 0xff;
}

/**
 * Encodes a RST_STREAM frame (§6.4).
 *
 * @param streamId a non-zero stream
 * @param code the error code, by name or number
 * @returns the frame
 */
export function encodeRstStream(streamId: number, code: Http2ErrorCode | number): Uint8Array {
  const out = _frame(FrameType.RST_STREAM, 0, streamId, 4);
  _writeU32(out, FRAME_HEADER_SIZE, typeof code === "number" ? code : errorCodeValue(code));
  return out;
}

/**
 * Encodes a SETTINGS frame (§6.5).
 *
 * @param settings identifier/value pairs, in order
 * @param ack whether this is an acknowledgement (then `settings` must be empty)
 * @returns the frame
 */
export function encodeSettings(
  settings: Iterable<readonly [id: number, value: number]>,
  ack = false,
): Uint8Array {
  const list = [...settings];
  const out = _frame(FrameType.SETTINGS, ack ? FrameFlag.ACK : 0, 0, list.length * 6);
  let at = FRAME_HEADER_SIZE;
  for (const [id, value] of list) {
    out[at] = (id >>> 8) & 0xff;
    out[at + 1] = id & 0xff;
    _writeU32(out, at + 2, value);
    at += 6;
  }
  return out;
}

/**
 * Encodes a PUSH_PROMISE frame (§6.6). Only for tests: this implementation never pushes.
 *
 * @param streamId the associated stream
 * @param promisedStreamId the reserved stream
 * @param fragment the field block fragment
 * @param endHeaders set END_HEADERS
 * @returns the frame
 */
export function encodePushPromise(
  streamId: number,
  promisedStreamId: number,
  fragment: Uint8Array,
  endHeaders = true,
): Uint8Array {
  const out = _frame(
    FrameType.PUSH_PROMISE,
    endHeaders ? FrameFlag.END_HEADERS : 0,
    streamId,
    4 + fragment.byteLength,
  );
  _writeU32(out, FRAME_HEADER_SIZE, promisedStreamId & 0x7fffffff);
  out.set(fragment, FRAME_HEADER_SIZE + 4);
  return out;
}

/**
 * Encodes a PING frame (§6.7).
 *
 * @param data exactly 8 bytes of opaque data
 * @param ack whether this is the response
 * @returns the frame
 */
export function encodePing(data: Uint8Array, ack = false): Uint8Array {
  if (data.byteLength !== 8) {
    throw new RangeError(`Cannot encode PING: data must be 8 bytes, received ${data.byteLength}`);
  }
  const out = _frame(FrameType.PING, ack ? FrameFlag.ACK : 0, 0, 8);
  out.set(data, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Encodes a GOAWAY frame (§6.8).
 *
 * @param lastStreamId the highest peer-initiated stream that was or might be processed
 * @param code the error code, by name or number
 * @param debugData opaque diagnostic bytes
 * @returns the frame
 */
export function encodeGoAway(
  lastStreamId: number,
  code: Http2ErrorCode | number,
  debugData: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = _frame(FrameType.GOAWAY, 0, 0, 8 + debugData.byteLength);
  _writeU32(out, FRAME_HEADER_SIZE, lastStreamId & 0x7fffffff);
  _writeU32(out, FRAME_HEADER_SIZE + 4, typeof code === "number" ? code : errorCodeValue(code));
  out.set(debugData, FRAME_HEADER_SIZE + 8);
  return out;
}

/**
 * Encodes a WINDOW_UPDATE frame (§6.9).
 *
 * @param streamId the stream, or 0 for the connection
 * @param increment 1..2^31-1 bytes
 * @returns the frame
 */
export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  const out = _frame(FrameType.WINDOW_UPDATE, 0, streamId, 4);
  _writeU32(out, FRAME_HEADER_SIZE, increment & 0x7fffffff);
  return out;
}

/**
 * Encodes a CONTINUATION frame (§6.10).
 *
 * @param streamId the stream of the field block
 * @param fragment the next fragment
 * @param endHeaders set END_HEADERS
 * @returns the frame
 */
export function encodeContinuation(streamId: number, fragment: Uint8Array, endHeaders = true): Uint8Array {
  const out = _frame(
    FrameType.CONTINUATION,
    endHeaders ? FrameFlag.END_HEADERS : 0,
    streamId,
    fragment.byteLength,
  );
  out.set(fragment, FRAME_HEADER_SIZE);
  return out;
}

/** Strips padding (§6.1, §6.2); `prefix` is the fixed field length after the pad octet. */
function _unpad(
  header: FrameHeader,
  payload: Uint8Array,
  prefix: number,
): [body: Uint8Array, padding: number] {
  if ((header.flags & FrameFlag.PADDED) === 0) {
    if (payload.byteLength < prefix) {
      throw _connectionError(
        "FRAME_SIZE_ERROR",
        `Cannot decode frame type ${header.type}: payload too short`,
      );
    }
    return [payload, 0];
  }
  if (payload.byteLength < 1 + prefix) {
    throw _connectionError("FRAME_SIZE_ERROR", `Cannot decode frame type ${header.type}: payload too short`);
  }
  const padLength = payload[0]!;
  if (padLength >= payload.byteLength - prefix) {
    // §6.1: padding as long as the payload or longer is a PROTOCOL_ERROR.
    throw _connectionError(
      "PROTOCOL_ERROR",
      `Cannot decode frame type ${header.type}: padding exceeds payload`,
    );
  }
  return [payload.subarray(1, payload.byteLength - padLength), padLength + 1];
}

function _priority(bytes: Uint8Array, at: number): PriorityFields {
  const dep = _u32(bytes, at);
  return { dependency: dep & 0x7fffffff, exclusive: (dep & 0x80000000) !== 0, weight: bytes[at + 4]! + 1 };
}

function _checkSetting(id: number, value: number): void {
  switch (id) {
    case SettingId.ENABLE_PUSH:
      if (value > 1) {
        throw _connectionError("PROTOCOL_ERROR", `Cannot apply SETTINGS: ENABLE_PUSH is ${value}`);
      }
      break;
    case SettingId.INITIAL_WINDOW_SIZE:
      if (value > MAX_WINDOW_SIZE) {
        throw _connectionError(
          "FLOW_CONTROL_ERROR",
          `Cannot apply SETTINGS: INITIAL_WINDOW_SIZE is ${value}`,
        );
      }
      break;
    case SettingId.MAX_FRAME_SIZE:
      if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
        throw _connectionError("PROTOCOL_ERROR", `Cannot apply SETTINGS: MAX_FRAME_SIZE is ${value}`);
      }
      break;
  }
}

/**
 * Decodes and validates a frame payload (§6).
 *
 * The caller checks the length against its SETTINGS_MAX_FRAME_SIZE first (§4.2). Data
 * views (`data`, `fragment`) share memory with `payload`.
 *
 * @param header the decoded header
 * @param payload exactly `header.length` bytes
 * @returns the frame
 * @throws {Http2Error} With the RFC code: a connection error, or a stream error when
 * `streamId` is set (PRIORITY of the wrong size, a stream depending on itself, a stream
 * WINDOW_UPDATE of zero).
 */
export function decodeFrame(header: FrameHeader, payload: Uint8Array): Frame {
  const { type, flags, streamId } = header;
  if (payload.byteLength !== header.length) {
    throw new RangeError(
      `Cannot decode frame: payload is ${payload.byteLength} bytes, header says ${header.length}`,
    );
  }
  const needStream = (name: string) => {
    if (streamId === 0) throw _connectionError("PROTOCOL_ERROR", `Cannot accept ${name}: stream id is 0`);
  };
  const needConnection = (name: string) => {
    if (streamId !== 0) {
      throw _connectionError("PROTOCOL_ERROR", `Cannot accept ${name}: stream id is ${streamId}`);
    }
  };
  switch (type) {
    case FrameType.DATA: {
      needStream("DATA");
      const [data, padding] = _unpad(header, payload, 0);
      return { kind: "data", streamId, data, endStream: (flags & FrameFlag.END_STREAM) !== 0, padding };
    }
    case FrameType.HEADERS: {
      needStream("HEADERS");
      const hasPriority = (flags & FrameFlag.PRIORITY) !== 0;
      const [body] = _unpad(header, payload, hasPriority ? 5 : 0);
      let priority: PriorityFields | undefined;
      let fragment = body;
      if (hasPriority) {
        priority = _priority(body, 0);
        // A self-dependency is a stream error (§5.3.1), but the field block must still be
        // decoded to keep HPACK state: the connection checks it after decoding.
        fragment = body.subarray(5);
      }
      return {
        kind: "headers",
        streamId,
        fragment,
        endStream: (flags & FrameFlag.END_STREAM) !== 0,
        endHeaders: (flags & FrameFlag.END_HEADERS) !== 0,
        priority,
      };
    }
    case FrameType.PRIORITY: {
      needStream("PRIORITY");
      if (payload.byteLength !== 5) {
        throw _streamError(
          "FRAME_SIZE_ERROR",
          streamId,
          `Cannot accept PRIORITY: length ${payload.byteLength}`,
        );
      }
      const priority = _priority(payload, 0);
      if (priority.dependency === streamId) {
        throw _streamError("PROTOCOL_ERROR", streamId, "Cannot accept PRIORITY: stream depends on itself");
      }
      return { kind: "priority", streamId, priority };
    }
    case FrameType.RST_STREAM:
      needStream("RST_STREAM");
      if (payload.byteLength !== 4) {
        throw _connectionError("FRAME_SIZE_ERROR", `Cannot accept RST_STREAM: length ${payload.byteLength}`);
      }
      return { kind: "rst_stream", streamId, errorCode: _u32(payload, 0) };
    case FrameType.SETTINGS: {
      needConnection("SETTINGS");
      const ack = (flags & FrameFlag.ACK) !== 0;
      if (ack && payload.byteLength !== 0) {
        throw _connectionError(
          "FRAME_SIZE_ERROR",
          `Cannot accept SETTINGS ACK: length ${payload.byteLength}`,
        );
      }
      if (payload.byteLength % 6 !== 0) {
        throw _connectionError("FRAME_SIZE_ERROR", `Cannot accept SETTINGS: length ${payload.byteLength}`);
      }
      const settings: [number, number][] = [];
      for (let at = 0; at < payload.byteLength; at += 6) {
        const id = (payload[at]! << 8) | payload[at + 1]!;
        const value = _u32(payload, at + 2);
        _checkSetting(id, value);
        settings.push([id, value]);
      }
      return { kind: "settings", ack, settings };
    }
    case FrameType.PUSH_PROMISE: {
      needStream("PUSH_PROMISE");
      const [body] = _unpad(header, payload, 4);
      return {
        kind: "push_promise",
        streamId,
        promisedStreamId: _u32(body, 0) & 0x7fffffff,
        fragment: body.subarray(4),
        endHeaders: (flags & FrameFlag.END_HEADERS) !== 0,
      };
    }
    case FrameType.PING:
      needConnection("PING");
      if (payload.byteLength !== 8) {
        throw _connectionError("FRAME_SIZE_ERROR", `Cannot accept PING: length ${payload.byteLength}`);
      }
      return { kind: "ping", ack: (flags & FrameFlag.ACK) !== 0, data: payload };
    case FrameType.GOAWAY:
      needConnection("GOAWAY");
      if (payload.byteLength < 8) {
        throw _connectionError("FRAME_SIZE_ERROR", `Cannot accept GOAWAY: length ${payload.byteLength}`);
      }
      return {
        kind: "goaway",
        lastStreamId: _u32(payload, 0) & 0x7fffffff,
        errorCode: _u32(payload, 4),
        debugData: payload.subarray(8),
      };
    case FrameType.WINDOW_UPDATE: {
      if (payload.byteLength !== 4) {
        throw _connectionError(
          "FRAME_SIZE_ERROR",
          `Cannot accept WINDOW_UPDATE: length ${payload.byteLength}`,
        );
      }
      const increment = _u32(payload, 0) & 0x7fffffff;
      if (increment === 0) {
        const message = "Cannot accept WINDOW_UPDATE: increment is 0";
        throw streamId === 0
          ? _connectionError("PROTOCOL_ERROR", message)
          : _streamError("PROTOCOL_ERROR", streamId, message);
      }
      return { kind: "window_update", streamId, increment };
    }
    case FrameType.CONTINUATION:
      needStream("CONTINUATION");
      return {
        kind: "continuation",
        streamId,
        fragment: payload,
        endHeaders: (flags & FrameFlag.END_HEADERS) !== 0,
      };
    default:
      return { kind: "unknown", type, streamId, flags, payload };
  }
}
