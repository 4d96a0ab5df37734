import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { BytesValueSchema, EmptySchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { GrpcError, protobufCodec, rawCodec, Status } from "../../mod.ts";

Deno.test("rawCodec is the identity, without copies", () => {
  const bytes = new Uint8Array([9, 8, 7]);
  assert.equal(rawCodec.name, "raw");
  assert.equal(rawCodec.encode(bytes), bytes);
  assert.equal(rawCodec.decode(bytes), bytes);
});

Deno.test("protobufCodec() encodes and decodes with the schema", () => {
  const codec = protobufCodec(BytesValueSchema);
  assert.equal(codec.name, "proto");
  const bytes = codec.encode(create(BytesValueSchema, { value: new Uint8Array([1, 2]) }));
  assert.deepEqual(bytes, new Uint8Array([0x0a, 2, 1, 2]));
  assert.deepEqual(codec.decode(bytes).value, new Uint8Array([1, 2]));
  assert.deepEqual(protobufCodec(EmptySchema).encode(create(EmptySchema)), new Uint8Array());
});

Deno.test("protobufCodec().decode() maps malformed bytes to GrpcError(INTERNAL)", () => {
  const codec = protobufCodec(StringValueSchema);
  for (
    const bad of [
      new Uint8Array([0x0a, 5, 0x61]),
      new Uint8Array([0xff]),
      new Uint8Array([0x0a, 2, 0xff, 0xfe]),
    ]
  ) {
    assert.throws(() => codec.decode(bad), (e: unknown) => {
      assert.ok(e instanceof GrpcError);
      assert.equal(e.code, Status.INTERNAL);
      assert.ok(e.cause !== undefined);
      return true;
    });
  }
});
