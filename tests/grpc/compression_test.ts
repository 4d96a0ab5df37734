import assert from "node:assert/strict";
import { GrpcError, gzipCompression, Status } from "../../mod.ts";
import { pseudoRandomBytes } from "../_util.ts";

Deno.test("gzipCompression round-trips empty, small and large messages", async () => {
  assert.equal(gzipCompression.name, "gzip");
  for (const message of [new Uint8Array(), new Uint8Array([1]), pseudoRandomBytes(300_000, 9)]) {
    const compressed = await gzipCompression.compress(message);
    assert.deepEqual(compressed.subarray(0, 2), new Uint8Array([0x1f, 0x8b]));
    assert.deepEqual(await gzipCompression.decompress(compressed, message.byteLength), message);
  }
});

Deno.test("gzipCompression.decompress() stops at the limit with RESOURCE_EXHAUSTED (zip bomb)", async () => {
  const bomb = await gzipCompression.compress(new Uint8Array(8 * 1024 * 1024));
  assert.ok(bomb.byteLength < 64 * 1024);
  await assert.rejects(gzipCompression.decompress(bomb, 1024 * 1024), (e: unknown) => {
    assert.ok(e instanceof GrpcError);
    assert.equal(e.code, Status.RESOURCE_EXHAUSTED);
    return true;
  });
});

Deno.test("gzipCompression.decompress() maps corrupt input to INTERNAL", async () => {
  for (
    const bad of [
      new Uint8Array([1, 2, 3, 4]),
      (await gzipCompression.compress(new Uint8Array(100))).subarray(0, 12),
    ]
  ) {
    await assert.rejects(gzipCompression.decompress(bad, 1000), (e: unknown) => {
      assert.ok(e instanceof GrpcError);
      assert.equal(e.code, Status.INTERNAL);
      return true;
    });
  }
});
