/**
 * The retry policy Gitaly's clients use for accessor RPCs, as gRPC service config
 * describes it: a few attempts with jittered exponential backoff, on `UNAVAILABLE` only.
 *
 * @module
 */

import { Status } from "../grpc/status.ts";

/** When and how often to retry a failed call (gRPC's `retryPolicy`, times in milliseconds). */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 never retries. */
  readonly maxAttempts: number;
  /** Upper bound of the first backoff. */
  readonly initialBackoff: number;
  /** Upper bound of any backoff. */
  readonly maxBackoff: number;
  /** Growth of the bound from one retry to the next. */
  readonly backoffMultiplier: number;
  /** The statuses that are retried. */
  readonly retryableStatuses: readonly Status[];
}

/**
 * Gitaly's client policy for accessor RPCs (`internal/grpc/client/dial.go`): 4 attempts,
 * 400 ms initial backoff, 1400 ms at most, doubling, on `UNAVAILABLE`.
 *
 * @example
 * ```ts
 * import { GITALY_RETRY_POLICY, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(GITALY_RETRY_POLICY.maxAttempts, 4);
 * assert.deepEqual(GITALY_RETRY_POLICY.retryableStatuses, [Status.UNAVAILABLE]);
 * ```
 */
export const GITALY_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 4,
  initialBackoff: 400,
  maxBackoff: 1400,
  backoffMultiplier: 2,
  retryableStatuses: Object.freeze([Status.UNAVAILABLE]),
});

/**
 * Checks a policy.
 *
 * @param policy the policy
 * @returns the same policy
 * @throws {RangeError} For attempts below 1, negative backoffs, a maximum below the
 * initial backoff, or a multiplier below 1.
 */
export function _checkRetryPolicy(policy: RetryPolicy): RetryPolicy {
  const { maxAttempts, initialBackoff, maxBackoff, backoffMultiplier } = policy;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(
      `Cannot use retry policy: maxAttempts must be an integer >= 1, received ${maxAttempts}`,
    );
  }
  if (!(initialBackoff >= 0) || !(maxBackoff >= initialBackoff) || !Number.isFinite(maxBackoff)) {
    throw new RangeError(
      `Cannot use retry policy: need 0 <= initialBackoff <= maxBackoff, received ${initialBackoff}, ${maxBackoff}`,
    );
  }
  if (!(backoffMultiplier >= 1) || !Number.isFinite(backoffMultiplier)) {
    throw new RangeError(
      `Cannot use retry policy: backoffMultiplier must be >= 1, received ${backoffMultiplier}`,
    );
  }
  return policy;
}

/**
 * The pause before retry number `retry` (1 for the second attempt): gRPC's jittered
 * backoff, uniformly random in `[0, min(initialBackoff × multiplier^(retry−1), maxBackoff))`.
 *
 * @param policy the policy
 * @param retry which retry, from 1
 * @param random a source of numbers in `[0, 1)`
 * @returns milliseconds to wait
 *
 * @example
 * ```ts
 * import { GITALY_RETRY_POLICY, retryBackoff } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bounds = [1, 2, 3].map((retry) => retryBackoff(GITALY_RETRY_POLICY, retry, () => 0.999999));
 * assert.deepEqual(bounds.map(Math.round), [400, 800, 1400]);
 * assert.equal(retryBackoff(GITALY_RETRY_POLICY, 1, () => 0), 0);
 * ```
 */
export function retryBackoff(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.initialBackoff * policy.backoffMultiplier ** (retry - 1), policy.maxBackoff);
  return bound * random();
}
