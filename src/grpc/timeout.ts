/**
 * The `grpc-timeout` request header: 1–8 ASCII digits and a unit.
 *
 * Units: `H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds,
 * `n` nanoseconds (case matters: `M` is minutes, `m` milliseconds).
 *
 * @module
 */

import { GrpcError, Status } from "./status.ts";

/** Largest value the header can carry: eight digits. */
const _MAX_VALUE = 99_999_999;

/** Units from most to least precise, with their length in nanoseconds. */
const _UNITS: readonly (readonly [unit: string, nanos: number])[] = [
  ["n", 1],
  ["u", 1e3],
  ["m", 1e6],
  ["S", 1e9],
  ["M", 60e9],
  ["H", 3600e9],
];

const _MILLIS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * Parses a `grpc-timeout` value into milliseconds (fractional below 1 ms).
 *
 * `0` with any unit is accepted and means the deadline has already passed.
 *
 * @param value the header value
 * @returns the timeout in milliseconds
 * @throws {GrpcError} `INTERNAL` for a malformed value (what a gRPC server replies).
 *
 * @example
 * ```ts
 * import { parseGrpcTimeout } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseGrpcTimeout("1S"), 1000);
 * assert.equal(parseGrpcTimeout("2M"), 120_000);
 * assert.equal(parseGrpcTimeout("1500u"), 1.5);
 * assert.throws(() => parseGrpcTimeout("123456789m"));
 * ```
 */
export function parseGrpcTimeout(value: string): number {
  const match = /^([0-9]{1,8})([HMSmun])$/.exec(value);
  if (match === null) {
    throw new GrpcError(
      Status.INTERNAL,
      `Cannot parse grpc-timeout: malformed value ${JSON.stringify(value)}`,
    );
  }
  return Number(match[1]) * _MILLIS[match[2]!]!;
}

/**
 * Formats a timeout in milliseconds for `grpc-timeout`, in the most precise unit whose
 * value fits in eight digits, rounded up so the deadline is never earlier than asked.
 *
 * Zero or negative timeouts give `"0n"` (already expired); timeouts beyond
 * 99999999 hours are clamped to `"99999999H"`.
 *
 * @param ms the timeout in milliseconds
 * @returns the header value
 * @throws {RangeError} For `NaN` or `Infinity` (send no header for no deadline).
 *
 * @example
 * ```ts
 * import { formatGrpcTimeout } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatGrpcTimeout(50), "50000000n");
 * assert.equal(formatGrpcTimeout(1000), "1000000u");
 * assert.equal(formatGrpcTimeout(3_600_000), "3600000m");
 * assert.equal(formatGrpcTimeout(86_400_000 * 7), "604800S");
 * ```
 */
export function formatGrpcTimeout(ms: number): string {
  if (!Number.isFinite(ms)) {
    throw new RangeError(`Cannot format grpc-timeout: ${ms} is not a finite number of milliseconds`);
  }
  if (ms <= 0) return "0n";
  // Whole nanoseconds, rounded up; exact below 2^53 ns (about 104 days), and beyond
  // that only whole seconds or coarser units can fit, so float error cannot matter.
  const nanos = Math.ceil(ms * 1e6 - 1e-6);
  for (const [unit, size] of _UNITS) {
    const value = Math.ceil(nanos / size);
    if (value <= _MAX_VALUE) return `${value}${unit}`;
  }
  return `${_MAX_VALUE}H`;
}
