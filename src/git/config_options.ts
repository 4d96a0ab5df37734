/**
 * Per-request git configuration (`git_config_options`), parsed and validated as Gitaly
 * does before passing it to git as `-c key=value`.
 *
 * @module
 */

import { GrpcError, Status } from "../grpc/status.ts";
import { _goQuote } from "./_go.ts";

/** One git configuration entry, passed to git as `-c key=value`. */
export interface ConfigPair {
  /** The key, e.g. `uploadpack.allowFilter`. */
  readonly key: string;
  /** The value, e.g. `true`. */
  readonly value: string;
}

/** Gitaly's `configKeyRegex`: an alphanumeric section, then dotted parts. */
const _KEY = /^[A-Za-z0-9]+(\.[*-/_:@a-zA-Z0-9]+)+$/;

/**
 * Splits `key=value` options at the first `=` (Gitaly's `ConvertConfigOptions`).
 *
 * Keys are not validated here: as in Gitaly, a bad key fails when git is started
 * (see {@linkcode configKeyError}).
 *
 * @param options the request's `git_config_options`
 * @returns the pairs, in order
 * @throws {GrpcError} `INVALID_ARGUMENT` `cannot convert invalid config key: "<option>"`
 * for an option without `=`.
 *
 * @example
 * ```ts
 * import { GrpcError, parseConfigOptions, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseConfigOptions(["uploadpack.hideRefs=refs/hidden", "a.b=c=d"]), [
 *   { key: "uploadpack.hideRefs", value: "refs/hidden" },
 *   { key: "a.b", value: "c=d" },
 * ]);
 * assert.throws(() => parseConfigOptions(["no-equals-sign"]), (error: unknown) => {
 *   assert.ok(error instanceof GrpcError);
 *   assert.equal(error.code, Status.INVALID_ARGUMENT);
 *   assert.equal(error.details, 'cannot convert invalid config key: "no-equals-sign"');
 *   return true;
 * });
 * ```
 */
export function parseConfigOptions(options: readonly string[]): ConfigPair[] {
  return options.map((option) => {
    const at = option.indexOf("=");
    if (at < 0) {
      throw new GrpcError(Status.INVALID_ARGUMENT, `cannot convert invalid config key: ${_goQuote(option)}`);
    }
    return { key: option.slice(0, at), value: option.slice(at + 1) };
  });
}

/**
 * Why git would refuse a configuration key, in Gitaly's words, or `undefined` for a
 * valid key.
 *
 * The rules of Gitaly's `GitConfig.Validate`: not empty, no `=`, at least one dot, no
 * dot at either end, and `^[[:alnum:]]+(\.[*-/_:@a-zA-Z0-9]+)+$`. The text is that of
 * Gitaly's `GlobalArgs` error, which it reports when starting git.
 *
 * @param key a configuration key
 * @returns the reason, e.g. `invalid configuration key "core": key: key "core" must
 * contain at least one section`, or `undefined`
 *
 * @example
 * ```ts
 * import { configKeyError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(configKeyError("uploadpack.allowFilter"), undefined);
 * assert.equal(
 *   configKeyError("core"),
 *   'invalid configuration key "core": key: key "core" must contain at least one section',
 * );
 * ```
 */
export function configKeyError(key: string): string | undefined {
  let reason: string | undefined;
  if (key === "") reason = "not set";
  else if (key.includes("=")) reason = `key ${_goQuote(key)} cannot contain "="`;
  else if (!key.includes(".")) reason = `key ${_goQuote(key)} must contain at least one section`;
  else if (key.startsWith(".") || key.endsWith(".")) {
    reason = `key ${_goQuote(key)} must not start or end with a dot`;
  } else if (!_KEY.test(key)) reason = `key ${_goQuote(key)} failed regexp validation`;
  return reason === undefined ? undefined : `invalid configuration key ${_goQuote(key)}: key: ${reason}`;
}
