/**
 * Header lists as HTTP/2 carries them, and the rules of RFC 9113 §8.2–§8.3.
 *
 * @module
 */

/**
 * An ordered header list: `[name, value]` pairs, pseudo-headers (`:method`, `:status`,
 * ...) first, names in lowercase. Strings are latin1-mapped octets (one char per byte).
 *
 * @example Look up a field
 * ```ts
 * import type { Http2Headers } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const headers: Http2Headers = [[":status", "200"], ["content-type", "text/plain"]];
 * assert.equal(headers.find(([name]) => name === "content-type")?.[1], "text/plain");
 * ```
 */
export type Http2Headers = [name: string, value: string][];

/**
 * Headers as callers may pass them: pairs (order kept, names may repeat) or a record
 * (an array value repeats the name). Names are lowercased and pseudo-headers moved first.
 *
 * @example Two equivalent forms
 * ```ts
 * import type { Http2HeadersInit } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const asRecord: Http2HeadersInit = { ":status": "200", "set-cookie": ["a=1", "b=2"] };
 * const asPairs: Http2HeadersInit = [[":status", "200"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]];
 * assert.equal(Object.keys(asRecord).length, 2);
 * assert.equal([...asPairs].length, 3);
 * ```
 */
export type Http2HeadersInit =
  | Iterable<readonly [string, string]>
  | Readonly<Record<string, string | readonly string[]>>;

/** Which message a header list belongs to. */
export type _HeaderKind = "request" | "response" | "trailers";

const _CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);
const _REQUEST_PSEUDO = new Set([":method", ":scheme", ":authority", ":path", ":protocol"]);

/** tchar (RFC 9110 §5.6.2) without uppercase letters, as a lookup table. */
const _NAME_CHAR = (() => {
  const table = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") table[c.charCodeAt(0)] = 1;
  return table;
})();

function _badName(name: string, from: number): boolean {
  if (name.length === from) return true;
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || _NAME_CHAR[c] !== 1) return true;
  }
  return false;
}

function _badValue(value: string): boolean {
  const n = value.length;
  if (n === 0) return false;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return true;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d || c > 0xff) return true;
  }
  return false;
}

/**
 * Checks a received header list (§8.2, §8.3).
 *
 * @param list the decoded list
 * @param kind what it should be
 * @returns a reason if the message is malformed, else `undefined`
 */
export function _checkHeaders(list: Http2Headers, kind: _HeaderKind): string | undefined {
  let regular = false;
  // The pseudo-headers seen (no Map per call: this runs for every request and response).
  let method: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let path: string | undefined;
  let protocol: string | undefined;
  let status: string | undefined;
  for (let i = 0; i < list.length; i++) {
    const [name, value] = list[i]!;
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (kind === "trailers") return `pseudo-header ${name} in trailers`;
      const allowed = kind === "request" ? _REQUEST_PSEUDO.has(name) : name === ":status";
      if (!allowed) return `pseudo-header ${name} not allowed in a ${kind}`;
      let seen: string | undefined;
      switch (name) {
        case ":method":
          seen = method;
          method = value;
          break;
        case ":scheme":
          seen = scheme;
          scheme = value;
          break;
        case ":authority":
          seen = authority;
          authority = value;
          break;
        case ":path":
          seen = path;
          path = value;
          break;
        case ":protocol":
          seen = protocol;
          protocol = value;
          break;
        default:
          seen = status;
          status = value;
      }
      if (seen !== undefined) return `duplicate ${name}`;
    } else {
      regular = true;
      if (_badName(name, 0)) return `invalid field name ${JSON.stringify(name)}`;
      if (_CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
      if (name === "te" && value !== "trailers") return "te other than trailers";
    }
    if (_badValue(value)) return `invalid value for ${name}`;
  }
  if (kind === "response") {
    if (status === undefined || !/^[1-9][0-9][0-9]$/.test(status)) return "missing or invalid :status";
  } else if (kind === "request") {
    if (method === undefined || method === "") return "missing :method";
    if (method === "CONNECT" && protocol === undefined) {
      if (authority === undefined || scheme !== undefined || path !== undefined) {
        return "malformed CONNECT";
      }
    } else {
      if (!scheme) return "missing :scheme";
      if (!path) return "missing :path";
    }
  }
  return undefined;
}

/** Lists from {@linkcode _checkedHeaders}: frozen, normalised and checked for their kind. */
const _CHECKED = new WeakMap<object, _HeaderKind>();

/**
 * Normalises and checks a header list once, for sending it many times (the same request
 * headers on every call of a method, the same response headers on every answer): the
 * list is frozen, and {@linkcode _normalizeHeaders} hands it back as it is. A frozen list
 * also lets HPACK reuse its encoding while the dynamic table is unchanged.
 *
 * @param init the headers
 * @param kind what they are
 * @returns the frozen list
 * @throws {TypeError} If the headers are not valid for `kind`.
 */
export function _checkedHeaders(init: Http2HeadersInit, kind: _HeaderKind): Http2Headers {
  const list = _normalizeHeaders(init, kind);
  for (const field of list) Object.freeze(field);
  Object.freeze(list);
  _CHECKED.set(list, kind);
  return list;
}

/**
 * Normalises headers to send: lowercases names, puts pseudo-headers first, checks the
 * same rules as {@linkcode _checkHeaders}.
 *
 * @param init the caller's headers
 * @param kind what they are
 * @returns the list to encode
 * @throws {TypeError} If the headers are not valid for `kind`.
 */
export function _normalizeHeaders(init: Http2HeadersInit, kind: _HeaderKind): Http2Headers {
  if (typeof init === "object" && init !== null && _CHECKED.get(init) === kind) return init as Http2Headers;
  const pseudo: Http2Headers = [];
  const regular: Http2Headers = [];
  const add = (name: string, value: string) => {
    if (typeof name !== "string" || typeof value !== "string") {
      throw new TypeError(`Cannot send headers: names and values must be strings`);
    }
    const lower = name.toLowerCase();
    (lower.charCodeAt(0) === 0x3a ? pseudo : regular).push([lower, value]);
  };
  if (typeof init !== "object" || init === null) throw new TypeError("Cannot send headers: not an object");
  if (Symbol.iterator in init) {
    for (const pair of init as Iterable<readonly [string, string]>) add(pair[0], pair[1]);
  } else {
    for (const [name, value] of Object.entries(init as Record<string, string | readonly string[]>)) {
      if (typeof value === "string") add(name, value);
      else for (const v of value) add(name, v);
    }
  }
  const list = pseudo.concat(regular);
  const problem = _checkHeaders(list, kind);
  if (problem !== undefined) throw new TypeError(`Cannot send ${kind} headers: ${problem}`);
  return list;
}

/**
 * The value of the first field named `name`.
 *
 * @param headers a header list
 * @param name a lowercase name
 * @returns the value, or `undefined`
 */
export function _headerValue(headers: Http2Headers, name: string): string | undefined {
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i]!;
    if (field[0] === name) return field[1];
  }
  return undefined;
}
