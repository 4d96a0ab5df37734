/**
 * Command-line and environment configuration of `deno task serve` (private: the
 * program's, not the library's).
 *
 * @module
 */

import type { GitalyTransport } from "../git/client.ts";

/** A `host:port` address. */
export interface _HostPort {
  hostname: string;
  port: number;
}

/** What `deno task serve` was asked to do. */
export interface _ServeConfig {
  /** `both`: storage server and front; `front`: front only (`--upstream`); `server`: storage server only. */
  mode: "both" | "front" | "server";
  /** Storage names and directories, the default first. */
  storages: [string, string][];
  hostname: string;
  /** Front HTTP port. */
  port: number;
  /** Storage server gRPC + backchannel port. */
  grpcPort: number;
  /** Separate h2c port for PostUploadPackV3, or `null`. */
  v3Port: number | null;
  transport: GitalyTransport;
  upstream: _HostPort | null;
  upstreamV3: _HostPort | null;
  /** TLS for the storage server (PEM file paths). */
  cert: string | null;
  key: string | null;
  /** CA (PEM file) the front trusts for TLS to its upstream; `null`: system roots (+ `cert`). */
  upstreamCa: string | null;
  /** Whether the front dials its upstream with TLS (always when `cert` is set in `both` mode). */
  upstreamTls: boolean;
  /** HTTPS for the front (PEM file paths). */
  httpCert: string | null;
  httpKey: string | null;
  token: string | null;
  drainTimeout: number;
  /** Bytes of git's output the storage server gathers per sidechannel write (0: as read). */
  sidechannelWriteBuffer: number;
  gitConfig: string[];
  logFormat: "text" | "json";
  verbose: boolean;
  help: boolean;
}

/** The help text. */
export const _USAGE = `deno task serve [options]

Serves the git repositories under ./repos over smart HTTP (clone with
git clone http://127.0.0.1:8080/<name>.git), through a Gitaly-style storage
server in the same process. Put a repository there with
  git clone --bare <url> repos/<name>.git

Options (each also as an environment variable SIDECHANNEL_<NAME>, e.g. SIDECHANNEL_PORT=9000):
  --repos DIR              repositories of the default storage (default ./repos, created if missing)
  --storage NAME=DIR       a storage (repeatable; the first is the default; replaces --repos);
                           URLs select another storage by their first segment: /NAME/repo.git
  --hostname HOST          listen address (default 127.0.0.1)
  --port N                 front (smart HTTP) port (default 8080; 0 picks one)
  --grpc-port N            storage server port, gRPC + backchannel (default 8075; 0 picks one)
  --v3-port N              separate h2c port for PostUploadPackV3 (default: none, V3 on --grpc-port)
  --transport T            front to storage server: sidechannel (default), v3 or grpc
  --upstream HOST:PORT     front only: use this storage server instead of starting one
  --upstream-v3 HOST:PORT  front only: the storage server's V3 port
  --server-only            storage server only, no front
  --cert FILE, --key FILE  TLS for the storage server (PEM)
  --upstream-tls           front only: dial the upstream with TLS
  --upstream-ca FILE       CA the front trusts for TLS to the storage server (PEM)
  --http-cert FILE, --http-key FILE   HTTPS for the front (PEM)
  --token TOKEN            shared secret between front and storage server (prefer SIDECHANNEL_TOKEN)
  --drain-timeout MS       on SIGINT/SIGTERM, wait this long for in-flight clones (default 30000)
  --sidechannel-write-buffer BYTES
                           storage server: gather git's output into writes of this size on the
                           sidechannel (default 262144; 0 writes as read, like Gitaly)
  --git-config KEY=VALUE   git config for every upload-pack (repeatable), e.g. uploadpack.allowFilter=true
  --log-format text|json   request log format (default text)
  --verbose                also log every storage-server RPC
  --help                   this text
`;

const _FLAGS = new Set([
  "repos",
  "storage",
  "hostname",
  "port",
  "grpc-port",
  "v3-port",
  "transport",
  "upstream",
  "upstream-v3",
  "cert",
  "key",
  "upstream-ca",
  "http-cert",
  "http-key",
  "token",
  "drain-timeout",
  "sidechannel-write-buffer",
  "git-config",
  "log-format",
]);
const _SWITCHES = new Set(["server-only", "upstream-tls", "verbose", "help"]);
const _REPEATED = new Set(["storage", "git-config"]);

function _port(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new RangeError(
      `Cannot parse --${name}: expected a port 0-65535, received ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * Parses `host:port` (`[::1]:8075` for IPv6).
 *
 * @param name the flag, for messages
 * @param value the text
 */
export function _hostPort(name: string, value: string): _HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  if (match === null) throw new RangeError(`Cannot parse --${name}: expected HOST:PORT, received ${value}`);
  const port = _port(name, match[3]!);
  if (port === 0) throw new RangeError(`Cannot parse --${name}: port 0 cannot be dialled`);
  return { hostname: match[1] ?? match[2]!, port };
}

/**
 * Parses arguments and environment (flags win; `SIDECHANNEL_<FLAG>` with dashes as
 * underscores; `SIDECHANNEL_STORAGE` and `SIDECHANNEL_GIT_CONFIG` take comma-separated
 * lists).
 *
 * @param args command-line arguments
 * @param env environment variables
 * @returns the configuration
 * @throws {RangeError} For unknown flags, bad values, or contradictory combinations.
 */
export function _parseServeArgs(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): _ServeConfig {
  const values = new Map<string, string[]>();
  const switches = new Set<string>();
  for (const name of [..._FLAGS, ..._SWITCHES]) {
    const value = env[`SIDECHANNEL_${name.toUpperCase().replaceAll("-", "_")}`];
    if (value === undefined || value === "") continue;
    if (_SWITCHES.has(name)) {
      if (!/^(0|false|no)$/i.test(value)) switches.add(name);
    } else {
      values.set(
        name,
        _REPEATED.has(name) ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : [value],
      );
    }
  }
  const fromArgs = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) {
      throw new RangeError(`Cannot parse arguments: unexpected ${JSON.stringify(arg)}`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (_SWITCHES.has(name)) {
      if (eq >= 0) throw new RangeError(`Cannot parse --${name}: it takes no value`);
      switches.add(name);
      continue;
    }
    if (!_FLAGS.has(name)) throw new RangeError(`Cannot parse arguments: unknown option --${name}`);
    const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new RangeError(`Cannot parse --${name}: missing value`);
    const list = fromArgs.get(name) ?? [];
    if (list.length > 0 && !_REPEATED.has(name)) throw new RangeError(`Cannot parse --${name}: given twice`);
    list.push(value);
    fromArgs.set(name, list);
  }
  for (const [name, list] of fromArgs) values.set(name, list);
  const one = (name: string): string | undefined => values.get(name)?.[0];

  const storages: [string, string][] = [];
  for (const spec of values.get("storage") ?? []) {
    const eq = spec.indexOf("=");
    if (eq <= 0 || eq === spec.length - 1) {
      throw new RangeError(`Cannot parse --storage: expected NAME=DIR, received ${JSON.stringify(spec)}`);
    }
    const name = spec.slice(0, eq);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new RangeError(`Cannot parse --storage: invalid storage name ${JSON.stringify(name)}`);
    }
    if (storages.some(([n]) => n === name)) {
      throw new RangeError(`Cannot parse --storage: ${name} given twice`);
    }
    storages.push([name, spec.slice(eq + 1)]);
  }
  if (storages.length > 0 && one("repos") !== undefined && fromArgs.has("repos")) {
    throw new RangeError("Cannot parse arguments: give --repos or --storage, not both");
  }
  if (storages.length === 0) storages.push(["default", one("repos") ?? "repos"]);

  const transport = one("transport") ?? "sidechannel";
  if (transport !== "sidechannel" && transport !== "v3" && transport !== "grpc") {
    throw new RangeError(`Cannot parse --transport: expected sidechannel, v3 or grpc, received ${transport}`);
  }
  const logFormat = one("log-format") ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new RangeError(`Cannot parse --log-format: expected text or json, received ${logFormat}`);
  }
  const upstream = one("upstream") === undefined ? null : _hostPort("upstream", one("upstream")!);
  const upstreamV3 = one("upstream-v3") === undefined ? null : _hostPort("upstream-v3", one("upstream-v3")!);
  const serverOnly = switches.has("server-only");
  if (serverOnly && upstream !== null) {
    throw new RangeError("Cannot parse arguments: --server-only and --upstream exclude each other");
  }
  if (upstreamV3 !== null && upstream === null) {
    throw new RangeError("Cannot parse --upstream-v3: needs --upstream");
  }
  const cert = one("cert") ?? null;
  const key = one("key") ?? null;
  if ((cert === null) !== (key === null)) throw new RangeError("Cannot parse arguments: --cert needs --key");
  const httpCert = one("http-cert") ?? null;
  const httpKey = one("http-key") ?? null;
  if ((httpCert === null) !== (httpKey === null)) {
    throw new RangeError("Cannot parse arguments: --http-cert needs --http-key");
  }
  const drain = Number(one("drain-timeout") ?? "30000");
  if (!Number.isInteger(drain) || drain < 0) {
    throw new RangeError(
      `Cannot parse --drain-timeout: expected milliseconds >= 0, received ${one("drain-timeout")}`,
    );
  }
  const writeBuffer = Number(one("sidechannel-write-buffer") ?? "262144");
  if (!Number.isInteger(writeBuffer) || writeBuffer < 0 || writeBuffer > 16 * 1024 * 1024) {
    throw new RangeError(
      `Cannot parse --sidechannel-write-buffer: expected bytes 0-16777216, received ${
        one("sidechannel-write-buffer")
      }`,
    );
  }
  const gitConfig = values.get("git-config") ?? [];
  for (const option of gitConfig) {
    if (!option.includes("=")) {
      throw new RangeError(`Cannot parse --git-config: expected KEY=VALUE, received ${option}`);
    }
  }
  const mode = serverOnly ? "server" : upstream !== null ? "front" : "both";
  return {
    mode,
    storages,
    hostname: one("hostname") ?? "127.0.0.1",
    port: _port("port", one("port") ?? "8080"),
    grpcPort: _port("grpc-port", one("grpc-port") ?? "8075"),
    v3Port: one("v3-port") === undefined ? null : _port("v3-port", one("v3-port")!),
    transport,
    upstream,
    upstreamV3,
    cert,
    key,
    upstreamCa: one("upstream-ca") ?? null,
    upstreamTls: switches.has("upstream-tls") || (mode === "both" && cert !== null) ||
      (mode === "front" && one("upstream-ca") !== undefined),
    httpCert,
    httpKey,
    token: one("token") ?? null,
    drainTimeout: drain,
    sidechannelWriteBuffer: writeBuffer,
    gitConfig,
    logFormat,
    verbose: switches.has("verbose"),
    help: switches.has("help"),
  };
}
