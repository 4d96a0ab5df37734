import assert from "node:assert/strict";
import { decodeGrpcMessage, encodeGrpcMessage } from "../../mod.ts";

Deno.test("encodeGrpcMessage() leaves printable ASCII except % alone", () => {
  const printable = Array.from({ length: 0x5f }, (_, i) => String.fromCharCode(0x20 + i)).join("");
  assert.equal(encodeGrpcMessage(printable), printable.replace("%", "%25"));
  assert.equal(encodeGrpcMessage(""), "");
});

Deno.test("encodeGrpcMessage() percent-encodes control bytes, % and UTF-8 in upper-case hex", () => {
  assert.equal(encodeGrpcMessage("a\tb\r\n\x7f"), "a%09b%0D%0A%7F");
  assert.equal(encodeGrpcMessage("%"), "%25");
  assert.equal(encodeGrpcMessage("\u00e9"), "%C3%A9");
  assert.equal(encodeGrpcMessage("\u{1f600}"), "%F0%9F%98%80");
  // grpc-go's test vector
  assert.equal(encodeGrpcMessage("my favorite character is \u0000"), "my favorite character is %00");
});

Deno.test("decodeGrpcMessage() inverts encodeGrpcMessage()", () => {
  for (
    const message of ["", "plain", "100%", "caf\u00e9 \u{1f600}\n", "\u0000\u0001%%41", "a".repeat(1000)]
  ) {
    assert.equal(decodeGrpcMessage(encodeGrpcMessage(message)), message);
  }
});

Deno.test("decodeGrpcMessage() tolerates malformed sequences and lower-case hex", () => {
  assert.equal(decodeGrpcMessage("%"), "%");
  assert.equal(decodeGrpcMessage("%4"), "%4");
  assert.equal(decodeGrpcMessage("%G1x"), "%G1x");
  assert.equal(decodeGrpcMessage("%c3%a9"), "\u00e9");
  assert.equal(decodeGrpcMessage("%41%"), "A%");
  // An invalid UTF-8 byte becomes U+FFFD instead of throwing.
  assert.equal(decodeGrpcMessage("x%FFy"), "x\ufffdy");
  // Raw non-ASCII text from a lax peer survives.
  assert.equal(decodeGrpcMessage("caf\u00e9 %21"), "caf\u00e9 !");
});
