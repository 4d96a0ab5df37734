/**
 * Helpers for the grpc-go interop peer (`tests/interop/grpc_peer/`, Debian's grpc-go
 * 1.33): start its server (grpc.testing.TestService + raw.Raw) and run its client's
 * interop cases against any port.
 *
 * @module
 */

import { buildGoPeer } from "./_go.ts";
import { assertPeerOk, type PeerExit, type PeerResult, runPeer, startPeer } from "./_peer.ts";

/** The standard grpc interop cases the Go client implements. */
export const GRPC_INTEROP_CASES = [
  "empty_unary",
  "large_unary",
  "client_streaming",
  "server_streaming",
  "ping_pong",
  "empty_stream",
  "timeout_on_sleeping_server",
  "cancel_after_begin",
  "cancel_after_first_response",
  "status_code_and_message",
  "special_status_message",
  "custom_metadata",
  "unimplemented_method",
  "unimplemented_service",
] as const;

/** The raw-codec cases (`/raw.Raw/*`) the Go client implements. */
export const GRPC_RAW_CASES = [
  "raw-echo",
  "raw-pull",
  "raw-push",
  "raw-bidi",
  "deadline",
  "cancel",
  "metadata",
] as const;

/** A running grpc-go server. */
export interface GrpcGoServer extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Where its self-signed certificate (PEM) was written, with `tls: true`. */
  readonly certFile: string | undefined;
  /** Stops it (SIGTERM, graceful) and returns its result line (`calls` per method). */
  stop(): Promise<PeerExit>;
}

/** Options for {@linkcode startGrpcGoServer}. */
export interface GrpcGoServerOptions {
  /** Serve TLS with a fresh self-signed certificate for 127.0.0.1 / localhost. */
  tls?: boolean;
  /** HTTP/2 stream window (`grpc.InitialWindowSize`); default: grpc-go's dynamic window. */
  window?: number;
  /** HTTP/2 connection window (`grpc.InitialConnWindowSize`). */
  connWindow?: number;
  /** More `grpc_peer` flags. */
  args?: string[];
}

/** Builds (cached) and starts `grpc_peer -mode server` on 127.0.0.1:0. */
export async function startGrpcGoServer(options: GrpcGoServerOptions = {}): Promise<GrpcGoServer> {
  const bin = await buildGoPeer("grpc_peer");
  const args = ["-mode", "server", "-listen", "127.0.0.1:0", "-serve-for", "5m", ..._windowArgs(options)];
  let certFile: string | undefined;
  if (options.tls) {
    certFile = await Deno.makeTempFile({ prefix: "grpc_peer_cert_", suffix: ".pem" });
    args.push("-tls", "-cert-out", certFile);
  }
  args.push(...(options.args ?? []));
  const peer = await startPeer(bin, args, { listen: true, timeoutMs: 6 * 60_000 });
  const cleanup = async () => {
    if (certFile !== undefined) await Deno.remove(certFile).catch(() => {});
  };
  return {
    port: peer.port,
    certFile,
    async stop() {
      try {
        return await peer.stop();
      } finally {
        await cleanup();
      }
    },
    async [Symbol.asyncDispose]() {
      await peer.stop();
      await cleanup();
    },
  };
}

/** Options for {@linkcode runGrpcGoClient}. */
export interface GrpcGoClientOptions {
  /** Connect with TLS, trusting this PEM certificate. */
  caFile?: string;
  /** Bytes for the raw cases (`-bytes`). */
  bytes?: number;
  /** HTTP/2 stream window for the client. */
  window?: number;
  /** HTTP/2 connection window for the client. */
  connWindow?: number;
  /** Kill the client after this many ms. */
  timeoutMs?: number;
  /** More `grpc_peer` flags (e.g. `["-subtype", "raw"]`, `["-verify=false"]`). */
  args?: string[];
}

/**
 * Runs `grpc_peer -mode client -test_case <testCase>` against 127.0.0.1:`port`.
 * `testCase` is one case, a comma-separated list, `all` or `all-raw`.
 */
export async function runGrpcGoClient(
  port: number,
  testCase: string,
  options: GrpcGoClientOptions = {},
): Promise<PeerExit> {
  const bin = await buildGoPeer("grpc_peer");
  const timeoutMs = options.timeoutMs ?? 60_000;
  const args = [
    "-mode",
    "client",
    "-target",
    `127.0.0.1:${port}`,
    "-test_case",
    testCase,
    "-timeout",
    `${Math.max(1, Math.floor(timeoutMs / 1000) - 1)}s`,
    ..._windowArgs(options),
  ];
  if (options.caFile !== undefined) args.push("-tls", "-ca", options.caFile);
  if (options.bytes !== undefined) args.push("-bytes", String(options.bytes));
  args.push(...(options.args ?? []));
  return await runPeer(bin, args, timeoutMs);
}

/** Like {@linkcode runGrpcGoClient}, but throws with details unless the case passed. */
export async function assertGrpcGoClientOk(
  port: number,
  testCase: string,
  options: GrpcGoClientOptions = {},
): Promise<PeerResult> {
  return assertPeerOk(await runGrpcGoClient(port, testCase, options), `grpc_peer client ${testCase}`);
}

function _windowArgs(options: { window?: number; connWindow?: number }): string[] {
  const args: string[] = [];
  if (options.window !== undefined) args.push("-window", String(options.window));
  if (options.connWindow !== undefined) args.push("-conn-window", String(options.connWindow));
  return args;
}
