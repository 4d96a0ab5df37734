import assert from "node:assert/strict";
import { formatGrpcTimeout, GrpcError, parseGrpcTimeout, Status } from "../../mod.ts";

Deno.test("parseGrpcTimeout() converts every unit to milliseconds", () => {
  assert.equal(parseGrpcTimeout("3H"), 3 * 3_600_000);
  assert.equal(parseGrpcTimeout("2M"), 120_000);
  assert.equal(parseGrpcTimeout("1S"), 1000);
  assert.equal(parseGrpcTimeout("250m"), 250);
  assert.equal(parseGrpcTimeout("1500u"), 1.5);
  assert.equal(parseGrpcTimeout("2000000n"), 2);
  assert.equal(parseGrpcTimeout("0m"), 0);
  assert.equal(parseGrpcTimeout("99999999H"), 99_999_999 * 3_600_000);
  assert.equal(parseGrpcTimeout("00000001S"), 1000);
});

Deno.test("parseGrpcTimeout() rejects malformed values with INTERNAL", () => {
  for (
    const bad of ["", "S", "1", "123456789m", "1s", "1h", "-1S", "+1S", "1.5S", " 1S", "1S ", "1 S", "1x"]
  ) {
    assert.throws(() => parseGrpcTimeout(bad), (e: unknown) => {
      assert.ok(e instanceof GrpcError, bad);
      assert.equal(e.code, Status.INTERNAL);
      return true;
    });
  }
});

Deno.test("formatGrpcTimeout() picks the most precise unit that fits in 8 digits", () => {
  assert.equal(formatGrpcTimeout(1), "1000000n");
  assert.equal(formatGrpcTimeout(99.999999), "99999999n");
  assert.equal(formatGrpcTimeout(100), "100000u");
  assert.equal(formatGrpcTimeout(99_999.999), "99999999u");
  assert.equal(formatGrpcTimeout(100_000), "100000m");
  assert.equal(formatGrpcTimeout(99_999_999), "99999999m");
  assert.equal(formatGrpcTimeout(100_000_000), "100000S");
  assert.equal(formatGrpcTimeout(99_999_999_000), "99999999S");
  assert.equal(formatGrpcTimeout(100_000_000_000), "1666667M");
  assert.equal(formatGrpcTimeout(99_999_999 * 60_000 + 1), "1666667H");
});

Deno.test("formatGrpcTimeout() rounds up, never shortening the deadline", () => {
  assert.equal(formatGrpcTimeout(0.0000001), "1n");
  assert.equal(formatGrpcTimeout(0.1), "100000n");
  assert.equal(formatGrpcTimeout(123.4567891), "123457u");
  assert.equal(formatGrpcTimeout(100_000_000_001), "1666667M");
  for (const ms of [1, 7, 99.5, 1234.5678, 86_400_000, 3_600_000 * 50_000]) {
    assert.ok(parseGrpcTimeout(formatGrpcTimeout(ms)) >= ms - 1e-9, String(ms));
  }
});

Deno.test("formatGrpcTimeout() handles zero, negative, huge and non-finite values", () => {
  assert.equal(formatGrpcTimeout(0), "0n");
  assert.equal(formatGrpcTimeout(-5), "0n");
  assert.equal(formatGrpcTimeout(1e20), "99999999H");
  assert.throws(() => formatGrpcTimeout(Number.NaN), RangeError);
  assert.throws(() => formatGrpcTimeout(Number.POSITIVE_INFINITY), RangeError);
});
