import assert from "node:assert/strict";
import {
  encodeEnvelope,
  encodeEnvelopeHeader,
  type Envelope,
  ENVELOPE_HEADER_SIZE,
  EnvelopeDecoder,
  FLAG_COMPRESSED,
  GrpcError,
  MAX_ENVELOPE_LENGTH,
  resolveEnvelopeDecoderOptions,
  Status,
  writeEnvelopeHeader,
} from "../../mod.ts";
import { concat, pseudoRandomBytes } from "../_util.ts";

function isGrpc(code: Status): (e: unknown) => boolean {
  return (e: unknown) => e instanceof GrpcError && e.code === code;
}

function drain(decoder: EnvelopeDecoder): Envelope[] {
  const out: Envelope[] = [];
  for (let e = decoder.next(); e !== undefined; e = decoder.next()) out.push(e);
  return out;
}

Deno.test("envelope constants", () => {
  assert.equal(ENVELOPE_HEADER_SIZE, 5);
  assert.equal(FLAG_COMPRESSED, 1);
  assert.equal(MAX_ENVELOPE_LENGTH, 2 ** 32 - 1);
});

Deno.test("encodeEnvelopeHeader() writes the flag and a big-endian u32 length", () => {
  assert.deepEqual(encodeEnvelopeHeader(0), new Uint8Array([0, 0, 0, 0, 0]));
  assert.deepEqual(encodeEnvelopeHeader(5, true), new Uint8Array([1, 0, 0, 0, 5]));
  assert.deepEqual(encodeEnvelopeHeader(0xdeadbeef), new Uint8Array([0, 0xde, 0xad, 0xbe, 0xef]));
  assert.deepEqual(encodeEnvelopeHeader(MAX_ENVELOPE_LENGTH), new Uint8Array([0, 255, 255, 255, 255]));
  assert.throws(() => encodeEnvelopeHeader(2 ** 32), RangeError);
  assert.throws(() => encodeEnvelopeHeader(-1), RangeError);
  assert.throws(() => encodeEnvelopeHeader(0.5), RangeError);
});

Deno.test("writeEnvelopeHeader() writes into a caller's buffer at an offset", () => {
  const backing = new Uint8Array(16);
  const view = backing.subarray(3);
  writeEnvelopeHeader(view, 2, 0x0102, true);
  assert.deepEqual(backing.subarray(5, 10), new Uint8Array([1, 0, 0, 1, 2]));
  assert.throws(() => writeEnvelopeHeader(view, 9, 1), RangeError);
  assert.throws(() => writeEnvelopeHeader(view, -1, 1), RangeError);
});

Deno.test("encodeEnvelope() returns the payload itself (zero-copy)", () => {
  const payload = pseudoRandomBytes(100_000);
  const [header, body] = encodeEnvelope(payload);
  assert.equal(body, payload);
  assert.deepEqual(header, new Uint8Array([0, 0, 0x01, 0x86, 0xa0]));
  const [compressedHeader] = encodeEnvelope(new Uint8Array(3), true);
  assert.equal(compressedHeader[0], 1);
});

Deno.test("EnvelopeDecoder decodes the gRPC spec example bytes and an empty message", () => {
  // An empty message (e.g. grpc.testing.Empty) is 5 zero bytes.
  const decoder = new EnvelopeDecoder();
  decoder.push(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x08, 0x96]));
  assert.deepEqual(drain(decoder), [
    { compressed: false, payload: new Uint8Array() },
    { compressed: false, payload: new Uint8Array([0x08, 0x96]) },
  ]);
  decoder.end();
});

for (const chunk of [1, 2, 5, 7, 1000, 1 << 20]) {
  Deno.test(`EnvelopeDecoder reassembles messages from ${chunk}-byte chunks`, () => {
    const messages = [
      new Uint8Array(),
      pseudoRandomBytes(3, 2),
      pseudoRandomBytes(70_000, 3),
      pseudoRandomBytes(10, 4),
    ];
    const wire = concat(messages.flatMap((m) => encodeEnvelope(m)));
    const decoder = new EnvelopeDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < wire.byteLength; i += chunk) {
      decoder.push(wire.subarray(i, i + chunk));
      out.push(...drain(decoder).map((e) => e.payload));
    }
    decoder.end();
    assert.deepEqual(out, messages);
  });
}

Deno.test("EnvelopeDecoder returns a view when a message lies in one chunk", () => {
  const payload = pseudoRandomBytes(1000);
  const wire = concat(encodeEnvelope(payload));
  const decoder = new EnvelopeDecoder();
  decoder.push(wire);
  const envelope = decoder.next()!;
  assert.equal(envelope.payload.buffer, wire.buffer);
  assert.equal(envelope.payload.byteOffset, 5);
  assert.deepEqual(envelope.payload, payload);
});

Deno.test("EnvelopeDecoder rejects an over-limit length from the header alone, before the body", () => {
  const decoder = new EnvelopeDecoder({ maxMessageBytes: 10 });
  decoder.push(encodeEnvelopeHeader(11));
  assert.throws(() => decoder.next(), isGrpc(Status.RESOURCE_EXHAUSTED));
  // Sticky.
  assert.throws(() => decoder.next(), isGrpc(Status.RESOURCE_EXHAUSTED));
  assert.throws(() => decoder.end(), isGrpc(Status.RESOURCE_EXHAUSTED));
  const exact = new EnvelopeDecoder({ maxMessageBytes: 10 });
  for (const part of encodeEnvelope(new Uint8Array(10))) exact.push(part);
  assert.equal(exact.next()!.payload.byteLength, 10);
});

Deno.test("EnvelopeDecoder default limit is 4 MiB, checked on a 4 GiB declaration too", () => {
  assert.equal(resolveEnvelopeDecoderOptions().maxMessageBytes, 4 * 1024 * 1024);
  const decoder = new EnvelopeDecoder();
  decoder.push(new Uint8Array([0, 0xff, 0xff, 0xff, 0xff]));
  assert.throws(() => decoder.next(), isGrpc(Status.RESOURCE_EXHAUSTED));
});

Deno.test("EnvelopeDecoder rejects a compressed flag unless compression was negotiated", () => {
  const plain = new EnvelopeDecoder();
  plain.push(concat(encodeEnvelope(new Uint8Array([1]), true)));
  assert.throws(() => plain.next(), isGrpc(Status.INTERNAL));
  const negotiated = new EnvelopeDecoder({ compressed: true });
  negotiated.push(concat(encodeEnvelope(new Uint8Array([1]), true)));
  assert.deepEqual(negotiated.next(), { compressed: true, payload: new Uint8Array([1]) });
});

Deno.test("EnvelopeDecoder rejects flag bytes other than 0 and 1 with INTERNAL", () => {
  const decoder = new EnvelopeDecoder({ compressed: true });
  decoder.push(new Uint8Array([2, 0, 0, 0, 0]));
  assert.throws(() => decoder.next(), isGrpc(Status.INTERNAL));
});

Deno.test("EnvelopeDecoder.end() reports an incomplete envelope with INTERNAL", () => {
  for (const leftover of [new Uint8Array([0, 0]), new Uint8Array([0, 0, 0, 0, 9, 1, 2])]) {
    const decoder = new EnvelopeDecoder();
    decoder.push(leftover);
    assert.equal(decoder.next(), undefined);
    assert.throws(() => decoder.end(), isGrpc(Status.INTERNAL));
  }
});

Deno.test("EnvelopeDecoder.end() throws TypeError if a complete envelope was not taken", () => {
  const decoder = new EnvelopeDecoder();
  decoder.push(new Uint8Array(5));
  assert.throws(() => decoder.end(), TypeError);
  const ended = new EnvelopeDecoder();
  ended.end();
  assert.throws(() => ended.push(new Uint8Array(1)), TypeError);
});

Deno.test("resolveEnvelopeDecoderOptions() validates maxMessageBytes", () => {
  assert.deepEqual(resolveEnvelopeDecoderOptions({ maxMessageBytes: 0, compressed: true }), {
    maxMessageBytes: 0,
    compressed: true,
  });
  for (const bad of [-1, 1.5, 2 ** 32, Number.NaN]) {
    assert.throws(() => new EnvelopeDecoder({ maxMessageBytes: bad }), RangeError);
  }
});
