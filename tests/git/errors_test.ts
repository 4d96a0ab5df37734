import assert from "node:assert/strict";
import {
  formatExitStatus,
  GrpcError,
  infoRefsError,
  type PackfileNegotiation,
  postUploadPackError,
  sshUploadPackError,
  Status,
  type UploadPackFailure,
  type UploadPackResult,
} from "../../mod.ts";
import { _goExitText, _goQuote } from "../../src/git/_go.ts";

const enc = new TextEncoder();

function stats(fields: Partial<PackfileNegotiation> = {}): PackfileNegotiation {
  return {
    payloadSize: 0,
    packets: 0,
    caps: [],
    wants: 0,
    haves: 0,
    shallows: 0,
    deepen: "",
    filter: "",
    command: "",
    userAgent: "",
    error: null,
    ...fields,
  };
}

function result(fields: {
  code?: number | null;
  signal?: Deno.Signal;
  failure?: UploadPackFailure;
  stderr?: string;
  stderrLength?: number;
  negotiation?: PackfileNegotiation;
}): UploadPackResult {
  const stderr = enc.encode(fields.stderr ?? "");
  const code = fields.code === undefined ? 0 : fields.code;
  return {
    status: code === null
      ? null
      : { success: code === 0 && fields.signal === undefined, code, signal: fields.signal ?? null },
    failure: fields.failure ?? null,
    stderr,
    stderrLength: fields.stderrLength ?? stderr.byteLength,
    stdinLength: 0,
    stdinError: null,
    stdoutLength: 0,
    negotiation: fields.negotiation ?? stats(),
  };
}

function expect(error: GrpcError | undefined, code: Status, details: string): void {
  assert.ok(error instanceof GrpcError, `expected ${details}`);
  assert.equal(error.code, code);
  assert.equal(error.details, details);
}

Deno.test("formatExitStatus() writes Go's exec.ExitError text", () => {
  assert.equal(formatExitStatus({ success: false, code: 128, signal: null }), "exit status 128");
  assert.equal(formatExitStatus({ success: false, code: 1, signal: null }), "exit status 1");
  assert.equal(formatExitStatus({ success: false, code: 137, signal: "SIGKILL" }), "signal: killed");
  assert.equal(formatExitStatus({ success: false, code: 143, signal: "SIGTERM" }), "signal: terminated");
  assert.equal(formatExitStatus({ success: false, code: 141, signal: "SIGPIPE" }), "signal: broken pipe");
  assert.equal(_goExitText({ code: 159, signal: "SIGSYS" }), "signal: SIGSYS");
});

Deno.test("_goQuote() quotes like Go's %q", () => {
  // Expected values produced by Go 1.19's fmt.Sprintf("%q", …).
  assert.equal(_goQuote("fatal: x\n"), '"fatal: x\\n"');
  assert.equal(_goQuote('tab\there "q" \\'), '"tab\\there \\"q\\" \\\\"');
  assert.equal(_goQuote("\u0000\u007f\u0007\b\f\r\v"), '"\\x00\\x7f\\a\\b\\f\\r\\v"');
  assert.equal(_goQuote("héllo ✓ 😀"), '"héllo ✓ 😀"');
  assert.equal(_goQuote("\u200b\u00ad"), '"\\u200b\\u00ad"');
  assert.equal(_goQuote(new Uint8Array([0xff, 0x41, 0xe2, 0x82])), '"\\xffA\\xe2\\x82"');
  assert.equal(
    _goQuote(new Uint8Array([0xed, 0xa0, 0x80])),
    '"\\xed\\xa0\\x80"',
    "surrogates are invalid UTF-8",
  );
  assert.equal(_goQuote(new Uint8Array([0xc0, 0x80])), '"\\xc0\\x80"', "overlong encodings are invalid");
  assert.equal(_goQuote(""), '""');
});

Deno.test("postUploadPackError() maps results as Gitaly's PostUploadPackWithSidechannel does", () => {
  assert.equal(postUploadPackError(result({ code: 0 })), undefined);
  expect(
    postUploadPackError(result({ code: 128 })),
    Status.FAILED_PRECONDITION,
    "running upload-pack: waiting for upload-pack: exit status 128",
  );
  expect(
    postUploadPackError(result({ code: 137, signal: "SIGKILL" })),
    Status.FAILED_PRECONDITION,
    "running upload-pack: waiting for upload-pack: signal: killed",
  );
  // Deepen exemption: any deepen form, any non-zero exit, but only with clean statistics.
  for (const deepen of ["deepen 1", "deepen-since 1700000000", "deepen-not refs/heads/x"]) {
    assert.equal(
      postUploadPackError(result({ code: 128, negotiation: stats({ deepen }) })),
      undefined,
      deepen,
    );
  }
  assert.equal(
    postUploadPackError(
      result({
        code: 128,
        negotiation: stats({ deepen: "deepen 1", error: new GrpcError(Status.INTERNAL) as never }),
      }),
    )?.code,
    Status.FAILED_PRECONDITION,
  );
  expect(
    postUploadPackError(result({ code: null, failure: { kind: "spawn", error: new Error("No such file") } })),
    Status.FAILED_PRECONDITION,
    "running upload-pack: spawning upload-pack: No such file",
  );
  expect(
    postUploadPackError(
      result({ code: 141, signal: "SIGPIPE", failure: { kind: "stdout", error: new Error("broken pipe") } }),
    ),
    Status.FAILED_PRECONDITION,
    "running upload-pack: copying stdout from upload-pack: broken pipe",
  );
  // A stopped run is never excused by a deepen line.
  expect(
    postUploadPackError(
      result({
        code: 128,
        failure: { kind: "stdout", error: "gone" },
        negotiation: stats({ deepen: "deepen 1" }),
      }),
    ),
    Status.FAILED_PRECONDITION,
    "running upload-pack: copying stdout from upload-pack: gone",
  );
  const aborted = postUploadPackError(
    result({
      code: 143,
      signal: "SIGTERM",
      failure: { kind: "aborted", reason: new DOMException("x", "AbortError") },
    }),
  );
  assert.equal(aborted?.code, Status.CANCELLED);
  const deadline = postUploadPackError(
    result({ code: 143, failure: { kind: "aborted", reason: new DOMException("x", "TimeoutError") } }),
  );
  assert.equal(deadline?.code, Status.DEADLINE_EXCEEDED);
  const given = new GrpcError(Status.UNAVAILABLE, "draining");
  assert.equal(
    postUploadPackError(result({ code: 143, failure: { kind: "aborted", reason: given } })),
    given,
  );
  expect(
    postUploadPackError(result({ code: 128, failure: { kind: "negotiation-timeout" } })),
    Status.DEADLINE_EXCEEDED,
    "running upload-pack: waiting for negotiation: context canceled",
  );
});

Deno.test("sshUploadPackError() maps results as Gitaly's SSHUploadPackWithSidechannel does", () => {
  assert.equal(sshUploadPackError(result({ code: 0 })), undefined);
  expect(
    sshUploadPackError(result({ code: 128, stderr: "fatal: the remote end hung up unexpectedly\n" })),
    Status.CANCELLED,
    "running upload-pack: user canceled the request",
  );
  // Only the exact text: anything else, or a truncated tail, is INTERNAL with the stderr.
  expect(
    sshUploadPackError(result({ code: 128, stderr: "fatal: the remote end hung up unexpectedly" })),
    Status.INTERNAL,
    'running upload-pack: cmd wait: exit status 128, stderr: "fatal: the remote end hung up unexpectedly"',
  );
  expect(
    sshUploadPackError(
      result({ code: 128, stderr: "fatal: the remote end hung up unexpectedly\n", stderrLength: 100 }),
    ),
    Status.INTERNAL,
    'running upload-pack: cmd wait: exit status 128, stderr: "fatal: the remote end hung up unexpectedly\\n"',
  );
  expect(
    sshUploadPackError(result({ code: 128, stderr: "fatal: unknown capability 'foobar'\n" })),
    Status.INTERNAL,
    `running upload-pack: cmd wait: exit status 128, stderr: "fatal: unknown capability 'foobar'\\n"`,
  );
  expect(
    sshUploadPackError(result({ code: 1, stderr: "" })),
    Status.INTERNAL,
    'running upload-pack: cmd wait: exit status 1, stderr: ""',
  );
  // No deepen exemption over SSH.
  assert.equal(
    sshUploadPackError(result({ code: 128, negotiation: stats({ deepen: "deepen 1" }) }))?.code,
    Status.INTERNAL,
  );
  expect(
    sshUploadPackError(result({ code: 128, failure: { kind: "negotiation-timeout" } })),
    Status.DEADLINE_EXCEEDED,
    "running upload-pack: waiting for negotiation: context canceled",
  );
  expect(
    sshUploadPackError(result({ code: null, failure: { kind: "spawn", error: new Error("ENOENT") } })),
    Status.INTERNAL,
    "running upload-pack: starting command: ENOENT",
  );
  expect(
    sshUploadPackError(result({ code: 141, failure: { kind: "stdout", error: new Error("reset") } })),
    Status.CANCELLED,
    "running upload-pack: user canceled the request",
  );
  assert.equal(
    sshUploadPackError(
      result({ code: 143, failure: { kind: "aborted", reason: new DOMException("x", "AbortError") } }),
    )?.code,
    Status.CANCELLED,
  );
});

Deno.test("infoRefsError() maps results as Gitaly's InfoRefsUploadPack does", () => {
  assert.equal(infoRefsError(result({ code: 0 })), undefined);
  expect(infoRefsError(result({ code: 128 })), Status.INTERNAL, "wait: exit status 128");
  expect(
    infoRefsError(result({ code: null, failure: { kind: "spawn", error: new Error("nope") } })),
    Status.INTERNAL,
    "cmd: nope",
  );
  assert.equal(
    infoRefsError(
      result({ code: 143, failure: { kind: "aborted", reason: new DOMException("x", "AbortError") } }),
    )?.code,
    Status.CANCELLED,
  );
});
