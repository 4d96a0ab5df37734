/**
 * RFC 7541 Appendix C examples (published test vectors) and small helpers for the HPACK tests.
 *
 * @module
 */

/** Octets from a hex dump; whitespace is ignored. */
export function hex(dump: string): Uint8Array {
  const digits = dump.replace(/\s+/g, "");
  if (digits.length % 2 !== 0 || /[^0-9a-f]/i.test(digits)) throw new TypeError(`Bad hex: ${dump}`);
  return new Uint8Array(digits.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
}

/** Lowercase hex of octets, for readable assertion failures. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One header block of an Appendix C example. */
export interface Example {
  /** Section, e.g. "C.3.1". */
  section: string;
  /** The header list. */
  headers: [string, string][];
  /** The encoded block. */
  block: Uint8Array;
  /** Dynamic table after decoding, newest first. */
  table: [string, string][];
  /** Dynamic table size after decoding. */
  tableSize: number;
}

/** C.2: independent representations, each on a fresh table. */
export const C2: Example[] = [
  {
    section: "C.2.1",
    headers: [["custom-key", "custom-header"]],
    block: hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    table: [["custom-key", "custom-header"]],
    tableSize: 55,
  },
  {
    section: "C.2.2",
    headers: [[":path", "/sample/path"]],
    block: hex("040c 2f73 616d 706c 652f 7061 7468"),
    table: [],
    tableSize: 0,
  },
  {
    section: "C.2.3",
    headers: [["password", "secret"]],
    block: hex("1008 7061 7373 776f 7264 0673 6563 7265 74"),
    table: [],
    tableSize: 0,
  },
  {
    section: "C.2.4",
    headers: [[":method", "GET"]],
    block: hex("82"),
    table: [],
    tableSize: 0,
  },
];

const REQUEST_1: [string, string][] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQUEST_2: [string, string][] = [...REQUEST_1, ["cache-control", "no-cache"]];
const REQUEST_3: [string, string][] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];
const REQUEST_TABLES: { table: [string, string][]; tableSize: number }[] = [
  { table: [[":authority", "www.example.com"]], tableSize: 57 },
  { table: [["cache-control", "no-cache"], [":authority", "www.example.com"]], tableSize: 110 },
  {
    table: [["custom-key", "custom-value"], ["cache-control", "no-cache"], [
      ":authority",
      "www.example.com",
    ]],
    tableSize: 164,
  },
];

/** C.3: requests without Huffman coding, one connection. */
export const C3: Example[] = [
  {
    section: "C.3.1",
    headers: REQUEST_1,
    block: hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    ...REQUEST_TABLES[0]!,
  },
  {
    section: "C.3.2",
    headers: REQUEST_2,
    block: hex("8286 84be 5808 6e6f 2d63 6163 6865"),
    ...REQUEST_TABLES[1]!,
  },
  {
    section: "C.3.3",
    headers: REQUEST_3,
    block: hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
    ...REQUEST_TABLES[2]!,
  },
];

/** C.4: the same requests with Huffman coding. */
export const C4: Example[] = [
  {
    section: "C.4.1",
    headers: REQUEST_1,
    block: hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
    ...REQUEST_TABLES[0]!,
  },
  {
    section: "C.4.2",
    headers: REQUEST_2,
    block: hex("8286 84be 5886 a8eb 1064 9cbf"),
    ...REQUEST_TABLES[1]!,
  },
  {
    section: "C.4.3",
    headers: REQUEST_3,
    block: hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
    ...REQUEST_TABLES[2]!,
  },
];

const DATE_1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE_2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESPONSE_1: [string, string][] = [
  [":status", "302"],
  ["cache-control", "private"],
  ["date", DATE_1],
  ["location", LOCATION],
];
const RESPONSE_2: [string, string][] = [
  [":status", "307"],
  ["cache-control", "private"],
  ["date", DATE_1],
  ["location", LOCATION],
];
const RESPONSE_3: [string, string][] = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", DATE_2],
  ["location", LOCATION],
  ["content-encoding", "gzip"],
  ["set-cookie", COOKIE],
];
const RESPONSE_TABLES: { table: [string, string][]; tableSize: number }[] = [
  {
    table: [["location", LOCATION], ["date", DATE_1], ["cache-control", "private"], [":status", "302"]],
    tableSize: 222,
  },
  {
    table: [[":status", "307"], ["location", LOCATION], ["date", DATE_1], ["cache-control", "private"]],
    tableSize: 222,
  },
  {
    table: [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE_2]],
    tableSize: 215,
  },
];

/** SETTINGS_HEADER_TABLE_SIZE of the C.5 and C.6 examples. */
export const RESPONSE_TABLE_SIZE = 256;

/** C.5: responses without Huffman coding, table size 256. */
export const C5: Example[] = [
  {
    section: "C.5.1",
    headers: RESPONSE_1,
    block: hex(`
      4803 3330 3258 0770 7269 7661 7465 611d
      4d6f 6e2c 2032 3120 4f63 7420 3230 3133
      2032 303a 3133 3a32 3120 474d 546e 1768
      7474 7073 3a2f 2f77 7777 2e65 7861 6d70
      6c65 2e63 6f6d`),
    ...RESPONSE_TABLES[0]!,
  },
  {
    section: "C.5.2",
    headers: RESPONSE_2,
    block: hex("4803 3330 37c1 c0bf"),
    ...RESPONSE_TABLES[1]!,
  },
  {
    section: "C.5.3",
    headers: RESPONSE_3,
    block: hex(`
      88c1 611d 4d6f 6e2c 2032 3120 4f63 7420
      3230 3133 2032 303a 3133 3a32 3220 474d
      54c0 5a04 677a 6970 7738 666f 6f3d 4153
      444a 4b48 514b 425a 584f 5157 454f 5049
      5541 5851 5745 4f49 553b 206d 6178 2d61
      6765 3d33 3630 303b 2076 6572 7369 6f6e
      3d31`),
    ...RESPONSE_TABLES[2]!,
  },
];

/** C.6: the same responses with Huffman coding. */
export const C6: Example[] = [
  {
    section: "C.6.1",
    headers: RESPONSE_1,
    block: hex(`
      4882 6402 5885 aec3 771a 4b61 96d0 7abe
      9410 54d4 44a8 2005 9504 0b81 66e0 82a6
      2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8
      e9ae 82ae 43d3`),
    ...RESPONSE_TABLES[0]!,
  },
  {
    section: "C.6.2",
    headers: RESPONSE_2,
    block: hex("4883 640e ffc1 c0bf"),
    ...RESPONSE_TABLES[1]!,
  },
  {
    section: "C.6.3",
    headers: RESPONSE_3,
    block: hex(`
      88c1 6196 d07a be94 1054 d444 a820 0595
      040b 8166 e084 a62d 1bff c05a 839b d9ab
      77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b
      3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
      9587 3160 65c0 03ed 4ee5 b106 3d50 07`),
    ...RESPONSE_TABLES[2]!,
  },
];

/** Deterministic PRNG (xorshift32) for randomized tests: returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let x = (seed >>> 0) || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}
