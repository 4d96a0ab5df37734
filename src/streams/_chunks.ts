/**
 * The receive queue shared by yamux and HTTP/2 streams: chunks in arrival order, each
 * with the release function of the pooled read buffer it is leased from (if any).
 * Private to the module.
 *
 * @module
 */

/**
 * Copies queued bytes into `view` in order, dropping (and releasing) the chunks used up
 * and trimming a chunk read in part. Returns the number of bytes copied.
 *
 * @internal
 */
export function _copyOutChunks(
  chunks: Uint8Array[],
  releases: ((() => void) | undefined)[],
  view: Uint8Array,
): number {
  let taken = 0;
  while (taken < view.byteLength && chunks.length > 0) {
    const head = chunks[0]!;
    const n = Math.min(head.byteLength, view.byteLength - taken);
    view.set(n === head.byteLength ? head : head.subarray(0, n), taken);
    taken += n;
    if (n === head.byteLength) {
      chunks.shift();
      releases.shift()?.();
    } else {
      chunks[0] = head.subarray(n);
    }
  }
  return taken;
}
