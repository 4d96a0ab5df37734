import assert from "node:assert/strict";
import { encodePkt, type Pkt, PktlineError, PktScanner, readPkts } from "../../mod.ts";
import { concat, text, utf8 } from "../_util.ts";

const largestPacket = "fff0" + "z".repeat(65516);

/** Re-encodes a packet as Gitaly's scanner token (prefix included). */
function token(pkt: Pkt): string {
  switch (pkt.kind) {
    case "data":
      return text(encodePkt(pkt.payload));
    case "flush":
      return "0000";
    case "delim":
      return "0001";
    case "response-end":
      return "0002";
    case "reserved":
      return "0003";
  }
}

/** Runs the scanner over `input` split into `chunk`-byte pieces, like bufio.Scanner. */
function scan(input: Uint8Array, chunk: number): { out: string[]; error: unknown } {
  const scanner = new PktScanner();
  const out: string[] = [];
  try {
    for (let i = 0; i < input.byteLength; i += chunk) {
      scanner.push(input.subarray(i, i + chunk));
      for (let pkt = scanner.next(); pkt !== undefined; pkt = scanner.next()) out.push(token(pkt));
    }
    scanner.end();
    return { out, error: undefined };
  } catch (error) {
    return { out, error };
  }
}

// Gitaly TestScanner
const scannerCases: { desc: string; input: string; out: string[]; code?: string }[] = [
  {
    desc: "happy path",
    input: "0010hello world!000000010010hello world!",
    out: ["0010hello world!", "0000", "0001", "0010hello world!"],
  },
  {
    desc: "large input",
    input: "0010hello world!0000" + largestPacket + "0000",
    out: ["0010hello world!", "0000", largestPacket, "0000"],
  },
  {
    desc: "unparsable input length",
    input: "0010hello world!0000" + "zzzz" + "hello world!",
    out: ["0010hello world!", "0000"],
    code: "INVALID_LENGTH",
  },
  {
    desc: "negative input length",
    input: "0010hello world!0000" + "-fff" + "hello world!",
    out: ["0010hello world!", "0000"],
    code: "INVALID_LENGTH",
  },
  {
    desc: "input length exceeding max size",
    input: "0010hello world!0000" + "ffff" + "z".repeat(65531) + "0000",
    out: ["0010hello world!", "0000"],
    code: "INVALID_LENGTH",
  },
  {
    desc: "missing byte middle",
    input: "0010hello world!00000010010hello world!",
    out: ["0010hello world!", "0000", "0010010hello wor"],
    code: "INCOMPLETE_PREFIX",
  },
  {
    desc: "unfinished prefix",
    input: "0010hello world!000",
    out: ["0010hello world!"],
    code: "INCOMPLETE_PREFIX",
  },
  {
    desc: "short read in data, only prefix",
    input: "0010hello world!0005",
    out: ["0010hello world!"],
    code: "UNEXPECTED_EOF",
  },
];

for (const tc of scannerCases) {
  for (const chunk of [1, 3, 7, 4096, 1 << 20]) {
    Deno.test(`PktScanner TestScanner: ${tc.desc} (${chunk}-byte chunks)`, () => {
      const { out, error } = scan(utf8(tc.input), chunk);
      if (tc.code === undefined) {
        assert.equal(error, undefined);
      } else {
        assert.ok(error instanceof PktlineError, String(error));
        assert.equal(error.code, tc.code);
      }
      assert.deepEqual(out, tc.out);
    });
  }
}

Deno.test("PktScanner reports 0000-0003 as special packets", () => {
  const { out, error } = scan(utf8("0000000100020003"), 1);
  assert.equal(error, undefined);
  assert.deepEqual(out, ["0000", "0001", "0002", "0003"]);
  const scanner = new PktScanner();
  scanner.push(utf8("00020003"));
  assert.deepEqual(scanner.next(), { kind: "response-end" });
  assert.deepEqual(scanner.next(), { kind: "reserved" });
});

Deno.test("PktScanner accepts upper-case hex and the empty packet 0004", () => {
  const scanner = new PktScanner();
  scanner.push(utf8("000Ahello!0004000a"));
  assert.equal(text((scanner.next() as { payload: Uint8Array }).payload), "hello!");
  assert.deepEqual(scanner.next(), { kind: "data", payload: new Uint8Array() });
  assert.equal(scanner.next(), undefined);
});

Deno.test("PktScanner rejects a signed length prefix (Gitaly's ParseInt would accept +fff and -000)", () => {
  for (const prefix of ["+fff", "+004", "-000", "-fff", " 004", "0x04"]) {
    const scanner = new PktScanner();
    scanner.push(utf8(prefix + "abcd"));
    assert.throws(
      () => scanner.next(),
      (e: unknown) => e instanceof PktlineError && e.code === "INVALID_LENGTH",
    );
  }
});

Deno.test("PktScanner accepts the largest packet fff0 and rejects fff1", () => {
  const ok = new PktScanner();
  ok.push(utf8(largestPacket));
  assert.equal((ok.next() as { payload: Uint8Array }).payload.byteLength, 65516);
  const bad = new PktScanner();
  bad.push(utf8("fff1"));
  assert.throws(() => bad.next(), (e: unknown) => e instanceof PktlineError && e.code === "INVALID_LENGTH");
});

Deno.test("PktScanner errors are sticky", () => {
  const scanner = new PktScanner();
  scanner.push(utf8("zzzz0004"));
  let first: unknown;
  assert.throws(() => scanner.next(), (e: unknown) => (first = e) instanceof PktlineError);
  assert.throws(() => scanner.next(), (e: unknown) => e === first);
  assert.throws(() => scanner.end(), (e: unknown) => e === first);
});

Deno.test("PktScanner.next() returns views of a single chunk without copying", () => {
  const chunk = utf8("0009hello0009world");
  const scanner = new PktScanner();
  scanner.push(chunk);
  const a = scanner.next() as { payload: Uint8Array };
  const b = scanner.next() as { payload: Uint8Array };
  assert.equal(a.payload.buffer, chunk.buffer);
  assert.equal(a.payload.byteOffset, 4);
  assert.equal(b.payload.buffer, chunk.buffer);
  assert.equal(text(b.payload), "world");
  assert.equal(scanner.buffered, 0);
});

Deno.test("PktScanner.next() copies a payload spanning chunks", () => {
  const scanner = new PktScanner();
  scanner.push(utf8("0009he"));
  assert.equal(scanner.next(), undefined);
  assert.equal(scanner.buffered, 6);
  scanner.push(utf8("llo"));
  assert.equal(text((scanner.next() as { payload: Uint8Array }).payload), "hello");
  assert.equal(scanner.buffered, 0);
});

Deno.test("PktScanner.end() throws TypeError while a complete packet is buffered", () => {
  const scanner = new PktScanner();
  scanner.push(utf8("0000"));
  assert.throws(() => scanner.end(), TypeError);
  const late = new PktScanner();
  late.end();
  assert.throws(() => late.push(utf8("0000")), TypeError);
});

Deno.test("PktScanner handles many tiny chunks (compaction) and keeps order", () => {
  const packets = Array.from({ length: 300 }, (_, i) => encodePkt(`packet ${i}`));
  const input = concat(packets);
  const scanner = new PktScanner();
  const out: string[] = [];
  for (let i = 0; i < input.byteLength; i++) {
    scanner.push(input.subarray(i, i + 1));
    if (i % 97 === 0) {
      for (let pkt = scanner.next(); pkt !== undefined; pkt = scanner.next()) {
        out.push(text((pkt as { payload: Uint8Array }).payload));
      }
    }
  }
  for (let pkt = scanner.next(); pkt !== undefined; pkt = scanner.next()) {
    out.push(text((pkt as { payload: Uint8Array }).payload));
  }
  scanner.end();
  assert.deepEqual(out, Array.from({ length: 300 }, (_, i) => `packet ${i}`));
});

Deno.test("readPkts() reads the Praefect 0008NAK\\n vector in 1-byte chunks", async () => {
  const input = utf8("0008NAK\n");
  const source = ReadableStream.from(Array.from(input, (b) => new Uint8Array([b])));
  const pkts = await Array.fromAsync(readPkts(source));
  assert.equal(pkts.length, 1);
  assert.equal(text((pkts[0] as { payload: Uint8Array }).payload), "NAK\n");
});

Deno.test("readPkts() rejects with UNEXPECTED_EOF on a truncated stream and cancels it", async () => {
  let cancelled: unknown = "not cancelled";
  const source = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(utf8("0009hello0009wo"));
    },
    pull(c) {
      c.close();
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const seen: Pkt[] = [];
  await assert.rejects(
    async () => {
      for await (const pkt of readPkts(source)) seen.push(pkt);
    },
    (e: unknown) => e instanceof PktlineError && e.code === "UNEXPECTED_EOF",
  );
  assert.equal(seen.length, 1);
  // The stream had already closed: nothing to cancel, and it is unlocked again.
  assert.equal(cancelled, "not cancelled");
  assert.equal(source.locked, false);
});

Deno.test("readPkts() cancels the stream when iteration stops early", async () => {
  let cancelled = false;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(utf8("0000"));
    },
    cancel() {
      cancelled = true;
    },
  });
  let count = 0;
  for await (const _ of readPkts(source)) {
    if (++count === 3) break;
  }
  assert.equal(cancelled, true);
  assert.equal(source.locked, false);
});

Deno.test("readPkts() rejects with the abort reason and cancels a stalled stream", async () => {
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    cancel(reason) {
      cancelled = reason;
    },
  });
  const controller = new AbortController();
  const reason = new Error("stop");
  const done = Array.fromAsync(readPkts(source, { signal: controller.signal }));
  controller.abort(reason);
  await assert.rejects(done, (e: unknown) => e === reason);
  assert.equal(cancelled, reason);
  await assert.rejects(
    Array.fromAsync(readPkts(new ReadableStream(), { signal: controller.signal })),
    (e: unknown) => e === reason,
  );
});

Deno.test("readPkts() reads only when no packet is buffered (bounded memory)", async () => {
  let pulls = 0;
  const chunk = concat(Array.from({ length: 10 }, () => encodePkt("x".repeat(1000))));
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      pulls++;
      if (pulls > 3) c.close();
      else c.enqueue(chunk.slice());
    },
  }, { highWaterMark: 0 });
  let count = 0;
  for await (const _ of readPkts(source)) {
    count++;
    // Packets of the chunk being read are served before the next pull.
    assert.equal(pulls, Math.ceil(count / 10));
  }
  assert.equal(count, 30);
});
