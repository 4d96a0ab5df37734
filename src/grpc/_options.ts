/**
 * Message limits and compression settings shared by the gRPC client and server options.
 * Private to the module.
 *
 * @module
 */

import { type Compression, gzipCompression } from "./compression.ts";
import { MAX_ENVELOPE_LENGTH } from "./envelope.ts";

/** The message settings both `GrpcClientOptions` and `GrpcServerOptions` carry. @internal */
export interface _MessageOptions {
  maxReceiveMessageBytes?: number;
  maxSendMessageBytes?: number;
  sendCompression?: Compression;
  acceptCompression?: readonly Compression[];
}

/** {@linkcode _MessageOptions} with defaults filled in and validated. @internal */
export interface _ResolvedMessageOptions {
  maxReceiveMessageBytes: number;
  maxSendMessageBytes: number;
  sendCompression: Compression | undefined;
  acceptCompression: ReadonlyMap<string, Compression>;
  /** The `grpc-accept-encoding` value: identity first, then the accepted names. */
  acceptEncodingHeader: string;
}

/**
 * Fills defaults (4 MiB received, the envelope maximum sent, gzip accepted) and validates.
 *
 * @param component `GrpcClient` or `GrpcServer`, for error messages
 * @internal
 */
export function _resolveMessageOptions(component: string, options: _MessageOptions): _ResolvedMessageOptions {
  const limit = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 0 || value > MAX_ENVELOPE_LENGTH) {
      throw new RangeError(
        `Cannot create ${component}: ${name} must be an integer 0-${MAX_ENVELOPE_LENGTH}, received ${value}`,
      );
    }
    return value;
  };
  const accept = new Map<string, Compression>();
  for (const c of options.acceptCompression ?? [gzipCompression]) {
    if (c.name === "identity") {
      throw new TypeError(`Cannot create ${component}: identity needs no Compression`);
    }
    accept.set(c.name, c);
  }
  return {
    maxReceiveMessageBytes: limit("maxReceiveMessageBytes", options.maxReceiveMessageBytes ?? 4 << 20),
    maxSendMessageBytes: limit("maxSendMessageBytes", options.maxSendMessageBytes ?? MAX_ENVELOPE_LENGTH),
    sendCompression: options.sendCompression,
    acceptCompression: accept,
    acceptEncodingHeader: ["identity", ...accept.keys()].join(","),
  };
}
