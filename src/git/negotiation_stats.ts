/**
 * Packfile negotiation statistics, parsed from an upload-pack request as it streams
 * past (Gitaly's `stats.ParsePackfileNegotiation`).
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { PackfileNegotiationStatisticsSchema } from "./gen/packfile_pb.ts";
import { PktlineError } from "../pktline/errors.ts";
import { PktScanner } from "../pktline/scanner.ts";
import { GitError } from "./errors.ts";
import { _goQuote } from "./_go.ts";

/**
 * What a client asked for in a packfile negotiation, counted as Gitaly counts it.
 *
 * The first eight fields are those of the `PackfileNegotiationStatistics` message
 * ({@linkcode negotiationStatsToProto}); `command`, `userAgent` and `error` are extras
 * Gitaly keeps for logs.
 */
export interface PackfileNegotiation {
  /** Bytes of all packet payloads seen, each without one trailing newline. */
  payloadSize: number;
  /** Packets seen before `done` (flush and delim packets count; `done` does not). */
  packets: number;
  /** Capabilities from the first `want` line (protocol v0/v1); empty for v2. */
  caps: string[];
  /** Number of `want` lines. */
  wants: number;
  /** Number of `have` lines. */
  haves: number;
  /** Number of `shallow` lines. */
  shallows: number;
  /** The last `deepen <n>`, `deepen-since <t>` or `deepen-not <ref>` line, or `""`. */
  deepen: string;
  /** The filter spec of the last `filter` line, or `""`. */
  filter: string;
  /** The protocol v2 command (`fetch`, `ls-refs`, …), or `""`. */
  command: string;
  /** The client's `agent=` value, from a capability or a v2 line, or `""`. */
  userAgent: string;
  /**
   * Why parsing stopped early, or `null`. Gitaly then reports empty statistics for
   * smart HTTP (and the partial ones for SSH); the counts above are those up to the
   * error.
   */
  error: GitError | null;
}

/** Empty statistics. */
function _empty(): PackfileNegotiation {
  return {
    payloadSize: 0,
    packets: 0,
    caps: [],
    wants: 0,
    haves: 0,
    shallows: 0,
    deepen: "",
    filter: "",
    command: "",
    userAgent: "",
    error: null,
  };
}

const _decoder = new TextDecoder();

/**
 * Parses negotiation statistics incrementally from request bytes in any chunking,
 * without buffering the request: memory stays below one packet.
 *
 * Semantics of Gitaly's `PackfileNegotiation.Parse`, for v0/v1 and v2 requests alike:
 * every packet counts and adds its payload (minus one trailing newline) to
 * `payloadSize`; `command=<c>` and `agent=<a>` lines set `command`/`userAgent`; `want`
 * needs an object id and may carry capabilities once; `shallow`, `deepen*`, `filter`
 * and `have` need exactly one argument; the `done` line stops parsing (it is not
 * counted) and later bytes are ignored. A malformed line or broken framing stops
 * parsing with {@linkcode PackfileNegotiation.error} set.
 *
 * @example Feed the bytes as they pass, read the statistics at the end
 * ```ts
 * import { encodeFlush, encodePkt, NegotiationStatsParser } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const oid = "1".repeat(40);
 * const parser = new NegotiationStatsParser();
 * parser.push(encodePkt(`want ${oid} multi_ack side-band-64k agent=git/2.39.5\n`));
 * parser.push(encodeFlush());
 * parser.push(encodePkt("done\n"));
 * const stats = parser.end();
 * assert.equal(stats.packets, 2);
 * assert.equal(stats.wants, 1);
 * assert.deepEqual(stats.caps, ["multi_ack", "side-band-64k", "agent=git/2.39.5"]);
 * assert.equal(stats.userAgent, "git/2.39.5");
 * ```
 */
export class NegotiationStatsParser {
  #scanner: PktScanner | null = new PktScanner();
  readonly #stats: PackfileNegotiation = _empty();
  #capsSet = false;

  /** True once parsing stopped: `done` seen, an error, or {@linkcode NegotiationStatsParser.end}. */
  get finished(): boolean {
    return this.#scanner === null;
  }

  /** Why parsing stopped early, or `null`. */
  get error(): GitError | null {
    return this.#stats.error;
  }

  /**
   * The statistics so far (a copy).
   *
   * @returns the statistics
   */
  stats(): PackfileNegotiation {
    return { ...this.#stats, caps: [...this.#stats.caps] };
  }

  /**
   * Adds request bytes. Keeps a reference to the part of `chunk` that holds an
   * incomplete packet until the rest arrives: do not modify pushed bytes.
   *
   * @param chunk the next bytes of the request
   */
  push(chunk: Uint8Array): void {
    const scanner = this.#scanner;
    if (scanner === null || chunk.byteLength === 0) return;
    scanner.push(chunk);
    try {
      while (this.#scanner !== null) {
        const pkt = scanner.next();
        if (pkt === undefined) break;
        this.#packet(pkt.kind === "data" ? pkt.payload : null);
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  /**
   * Declares the end of the request. Input that ends inside a packet before `done`
   * sets {@linkcode NegotiationStatsParser.error}.
   *
   * @returns the final statistics
   */
  end(): PackfileNegotiation {
    const scanner = this.#scanner;
    if (scanner !== null) {
      this.#scanner = null;
      try {
        scanner.end();
      } catch (error) {
        this.#fail(error);
      }
    }
    return this.stats();
  }

  #fail(error: unknown): void {
    this.#scanner = null;
    if (this.#stats.error !== null) return;
    this.#stats.error = error instanceof GitError ? error : new GitError(
      "INVALID_NEGOTIATION",
      `Cannot parse packfile negotiation: ${error instanceof PktlineError ? error.message : String(error)}`,
      { cause: error },
    );
  }

  #invalid(what: string, line: string): never {
    throw new GitError(
      "INVALID_NEGOTIATION",
      `Cannot parse packfile negotiation: invalid '${what}' for packet ${this.#stats.packets}: ${
        _goQuote(line)
      }`,
    );
  }

  /** One packet; `payload` is null for flush/delim/response-end. */
  #packet(payload: Uint8Array | null): void {
    const s = this.#stats;
    let bytes = payload ?? new Uint8Array(0);
    if (bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === 0x0a) bytes = bytes.subarray(0, -1);
    const line = _decoder.decode(bytes);
    const split = line.split(" ");
    const first = split[0]!;
    s.payloadSize += bytes.byteLength;
    if (first.startsWith("command=")) {
      s.command = first.slice("command=".length);
    } else if (first.startsWith("agent=")) {
      s.userAgent = first.slice("agent=".length);
    } else {
      switch (first) {
        case "want":
          if (split.length < 2) this.#invalid("want", line);
          if (split.length > 2 && this.#capsSet) {
            throw new GitError(
              "INVALID_NEGOTIATION",
              `Cannot parse packfile negotiation: capabilities announced multiple times in packet ${s.packets}: ${
                _goQuote(line)
              }`,
            );
          }
          s.wants++;
          if (split.length > 2) {
            s.caps = split.slice(2);
            this.#capsSet = true;
            const agent = s.caps.find((cap) => cap.startsWith("agent="));
            if (agent !== undefined) s.userAgent = agent.slice("agent=".length);
          }
          break;
        case "shallow":
          if (split.length !== 2) this.#invalid("shallow", line);
          s.shallows++;
          break;
        case "deepen":
        case "deepen-since":
        case "deepen-not":
          if (split.length !== 2) this.#invalid("deepen", line);
          s.deepen = line;
          break;
        case "filter":
          if (split.length !== 2) this.#invalid("filter", line);
          s.filter = split[1]!;
          break;
        case "have":
          if (split.length !== 2) this.#invalid("have", line);
          s.haves++;
          break;
        case "done":
          this.#scanner = null;
          return;
      }
    }
    s.packets++;
  }
}

/**
 * Parses the statistics of a whole request (bytes or a stream, read to its end).
 *
 * @param request the request
 * @returns the statistics; check `error`
 *
 * @example
 * ```ts
 * import { encodeDelim, encodeFlush, encodePkt, parsePackfileNegotiation } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const lines = ["command=fetch\n", "agent=git/2.39.5\n", "object-format=sha1\n"].map((l) => encodePkt(l));
 * const args = [`want ${"a".repeat(40)}\n`, "done\n"].map((l) => encodePkt(l));
 * const request = ReadableStream.from([...lines, encodeDelim(), ...args, encodeFlush()]);
 * const stats = await parsePackfileNegotiation(request);
 * assert.equal(stats.packets, 5);
 * assert.equal(stats.wants, 1);
 * assert.equal(stats.command, "fetch");
 * ```
 */
export async function parsePackfileNegotiation(
  request: Uint8Array | ReadableStream<Uint8Array>,
): Promise<PackfileNegotiation> {
  const parser = new NegotiationStatsParser();
  if (request instanceof Uint8Array) {
    parser.push(request);
    return parser.end();
  }
  for await (const chunk of request) parser.push(chunk);
  return parser.end();
}

/**
 * The generated `gitaly.PackfileNegotiationStatistics` message (`src/git/gen/packfile_pb.ts`),
 * described by its fields so that the public API does not expose `@bufbuild/protobuf`'s
 * types. Values fit wherever the generated type is expected (e.g. the
 * `packfileNegotiationStatistics` field of a response created with `create()`).
 */
export interface PackfileNegotiationStatisticsMessage {
  /** The message's type name. */
  readonly $typeName: "gitaly.PackfileNegotiationStatistics";
  /** `payload_size = 1`: see {@linkcode PackfileNegotiation.payloadSize}. */
  payloadSize: bigint;
  /** `packets = 2`. */
  packets: bigint;
  /** `caps = 3`. */
  caps: string[];
  /** `wants = 4`. */
  wants: bigint;
  /** `haves = 5`. */
  haves: bigint;
  /** `shallows = 6`. */
  shallows: bigint;
  /** `deepen = 7`. */
  deepen: string;
  /** `filter = 8`. */
  filter: string;
}

/**
 * The `PackfileNegotiationStatistics` message for some statistics.
 *
 * @param stats the statistics
 * @returns the protobuf message
 *
 * @example
 * ```ts
 * import { negotiationStatsToProto, parsePackfileNegotiation } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const stats = await parsePackfileNegotiation(new TextEncoder().encode(`0032want ${"a".repeat(40)}\n00000009done\n`));
 * const message = negotiationStatsToProto(stats);
 * assert.equal(message.wants, 1n);
 * assert.equal(message.packets, 2n);
 * assert.equal(message.payloadSize, 45n + 4n);
 * ```
 */
export function negotiationStatsToProto(stats: PackfileNegotiation): PackfileNegotiationStatisticsMessage {
  return create(PackfileNegotiationStatisticsSchema, {
    payloadSize: BigInt(stats.payloadSize),
    packets: BigInt(stats.packets),
    caps: [...stats.caps],
    wants: BigInt(stats.wants),
    haves: BigInt(stats.haves),
    shallows: BigInt(stats.shallows),
    deepen: stats.deepen,
    filter: stats.filter,
  });
}
