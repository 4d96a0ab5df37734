/**
 * The HPACK static table (RFC 7541 Appendix A) and the lookups the encoder needs.
 *
 * @module
 */

/**
 * The 61 predefined fields, in order: HPACK index `i` (1-based) is `STATIC_TABLE[i - 1]`.
 */
export const STATIC_TABLE: readonly (readonly [name: string, value: string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Number of static entries; dynamic indices start right after. */
export const STATIC_TABLE_LENGTH = 61;

/** name → lowest static index with that name. */
const _nameIndex = new Map<string, number>();
/** name → (value → static index). */
const _fieldIndex = new Map<string, Map<string, number>>();
for (let i = STATIC_TABLE.length - 1; i >= 0; i--) {
  const [name, value] = STATIC_TABLE[i]!;
  _nameIndex.set(name, i + 1);
  let values = _fieldIndex.get(name);
  if (values === undefined) _fieldIndex.set(name, values = new Map());
  values.set(value, i + 1);
}

/**
 * The static index of the exact field `name: value`, or 0 if there is none.
 *
 * @param name the field name
 * @param value the field value
 * @returns the 1-based index, or 0
 */
export function staticFieldIndex(name: string, value: string): number {
  return _fieldIndex.get(name)?.get(value) ?? 0;
}

/**
 * The lowest static index whose name is `name`, or 0 if there is none.
 *
 * @param name the field name
 * @returns the 1-based index, or 0
 */
export function staticNameIndex(name: string): number {
  return _nameIndex.get(name) ?? 0;
}
