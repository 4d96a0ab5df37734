/**
 * Exact reads and complete writes over direct I/O, for the benchmarks and their peers.
 *
 * @module
 */

/** Reads exactly `n` bytes; a clean end before that throws. */
export async function readFull(
  conn: { read(p: Uint8Array): Promise<number | null> },
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await conn.read(out.subarray(got));
    if (k === null) throw new Error("unexpected end of stream");
    got += k;
  }
  return out;
}

/** Writes all of `bytes` (a direct write may take part of them). */
export async function writeAll(
  conn: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
}
