/**
 * The standard gRPC interop client cases (grpc/grpc `doc/interop-test-descriptions.md`),
 * run with our GrpcClient against any TestService server.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { type GrpcClient, GrpcError, type Metadata, Status } from "../../../mod.ts";
import { EmptySchema } from "../gen/grpc/testing/empty_pb.ts";
import {
  type Payload,
  SimpleRequestSchema,
  StreamingInputCallRequestSchema,
  StreamingOutputCallRequestSchema,
} from "../gen/grpc/testing/messages_pb.ts";
import { TEST, UNIMPLEMENTED } from "./services.ts";

/** The cases, in the order `all` runs them. */
export const INTEROP_CASES = [
  "empty_unary",
  "large_unary",
  "client_streaming",
  "server_streaming",
  "ping_pong",
  "empty_stream",
  "timeout_on_sleeping_server",
  "cancel_after_begin",
  "cancel_after_first_response",
  "status_code_and_message",
  "special_status_message",
  "custom_metadata",
  "unimplemented_method",
  "unimplemented_service",
] as const;

/** One case's name. */
export type InteropCase = typeof INTEROP_CASES[number];

const REQUEST_SIZES = [27182, 8, 1828, 45904];
const RESPONSE_SIZES = [31415, 9, 2653, 58979];
const INITIAL_VALUE = "test_initial_metadata_value";
const TRAILING_VALUE = new Uint8Array([0x0a, 0x0b, 0x0a, 0x0b, 0x0a, 0x0b]);
const SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n";

class CaseFailure extends Error {
  override name = "CaseFailure";
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CaseFailure(message);
}

function payload(size: number): { body: Uint8Array } {
  return { body: new Uint8Array(size) };
}

function checkPayload(p: Payload | undefined, size: number, what: string): void {
  check(
    (p?.body.byteLength ?? 0) === size,
    `${what}: payload of ${p?.body.byteLength ?? 0} bytes, want ${size}`,
  );
}

async function expectStatus(
  promise: Promise<unknown>,
  code: Status,
  what: string,
  message?: string,
): Promise<void> {
  try {
    await promise;
  } catch (error) {
    check(error instanceof GrpcError, `${what}: want a GrpcError, got ${String(error)}`);
    check(error.code === code, `${what}: want status ${code}, got ${error.code} (${error.details})`);
    if (message !== undefined) {
      check(
        error.details === message,
        `${what}: want message ${JSON.stringify(message)}, got ${JSON.stringify(error.details)}`,
      );
    }
    return;
  }
  throw new CaseFailure(`${what}: want status ${code}, the call succeeded`);
}

function checkEchoed(header: Metadata | undefined, trailer: Metadata | undefined, what: string): void {
  const initial = header?.filter(([k]) => k === "x-grpc-test-echo-initial").map(([, v]) => v);
  check(
    initial?.length === 1 && initial[0] === INITIAL_VALUE,
    `${what}: echoed initial metadata ${JSON.stringify(initial)}`,
  );
  const trailing = trailer?.filter(([k]) => k === "x-grpc-test-echo-trailing-bin").map(([, v]) => v);
  const value = trailing?.[0];
  check(
    trailing?.length === 1 && value instanceof Uint8Array && value.length === 6 &&
      value.every((b, i) => b === TRAILING_VALUE[i]),
    `${what}: echoed trailing metadata ${JSON.stringify(trailing)}`,
  );
}

/** Runs one case; throws a descriptive error if it fails. */
export async function runInteropCase(
  client: GrpcClient,
  name: InteropCase,
): Promise<Record<string, unknown>> {
  switch (name) {
    case "empty_unary": {
      await client.unary(TEST.emptyCall, create(EmptySchema));
      return {};
    }
    case "large_unary": {
      const response = await client.unary(
        TEST.unaryCall,
        create(SimpleRequestSchema, { responseSize: 314159, payload: payload(271828) }),
      );
      checkPayload(response.payload, 314159, "UnaryCall");
      return {};
    }
    case "client_streaming": {
      const response = await client.clientStream(
        TEST.streamingInputCall,
        REQUEST_SIZES.map((n) => create(StreamingInputCallRequestSchema, { payload: payload(n) })),
      );
      check(
        response.aggregatedPayloadSize === 74922,
        `aggregated_payload_size ${response.aggregatedPayloadSize}`,
      );
      return { aggregatedPayloadSize: response.aggregatedPayloadSize };
    }
    case "server_streaming": {
      const call = client.serverStream(
        TEST.streamingOutputCall,
        create(StreamingOutputCallRequestSchema, {
          responseParameters: RESPONSE_SIZES.map((size) => ({ size })),
        }),
      );
      const all = await Array.fromAsync(call.responses);
      check(all.length === 4, `${all.length} responses, want 4`);
      all.forEach((r, i) => checkPayload(r.payload, RESPONSE_SIZES[i]!, `response ${i}`));
      return { responses: all.length };
    }
    case "ping_pong": {
      const call = client.stream(TEST.fullDuplexCall);
      const writer = call.requests.getWriter();
      const reader = call.responses.getReader();
      for (let i = 0; i < 4; i++) {
        await writer.write(create(StreamingOutputCallRequestSchema, {
          responseParameters: [{ size: RESPONSE_SIZES[i]! }],
          payload: payload(REQUEST_SIZES[i]!),
        }));
        const { value, done } = await reader.read();
        check(!done, `stream ended before response ${i}`);
        checkPayload(value.payload, RESPONSE_SIZES[i]!, `response ${i}`);
      }
      await writer.close();
      check((await reader.read()).done, "more responses after the last");
      await call.done;
      return { exchanges: 4 };
    }
    case "empty_stream": {
      const call = client.stream(TEST.fullDuplexCall);
      await call.requests.close();
      const all = await Array.fromAsync(call.responses);
      check(all.length === 0, `${all.length} responses, want none`);
      return {};
    }
    case "timeout_on_sleeping_server": {
      const call = client.stream(TEST.fullDuplexCall, { timeout: 1 });
      const writer = call.requests.getWriter();
      await writer.write(create(StreamingOutputCallRequestSchema, { payload: payload(27182) })).catch(
        () => {},
      );
      await expectStatus(Array.fromAsync(call.responses), Status.DEADLINE_EXCEEDED, "FullDuplexCall");
      return {};
    }
    case "cancel_after_begin": {
      const controller = new AbortController();
      const requests = (async function* () {
        controller.abort();
        yield* [];
        await new Promise(() => {}); // never completes: the call is cancelled first
      })();
      await expectStatus(
        client.clientStream(TEST.streamingInputCall, requests, { signal: controller.signal }),
        Status.CANCELLED,
        "StreamingInputCall",
      );
      return {};
    }
    case "cancel_after_first_response": {
      const call = client.stream(TEST.fullDuplexCall);
      const writer = call.requests.getWriter();
      await writer.write(create(StreamingOutputCallRequestSchema, {
        responseParameters: [{ size: 31415 }],
        payload: payload(27182),
      }));
      const reader = call.responses.getReader();
      const first = await reader.read();
      check(!first.done, "no first response");
      call.cancel();
      await expectStatus(reader.read(), Status.CANCELLED, "FullDuplexCall");
      return {};
    }
    case "status_code_and_message":
    case "special_status_message": {
      const message = name === "status_code_and_message" ? "test status message" : SPECIAL_MESSAGE;
      const responseStatus = { code: 2, message };
      await expectStatus(
        client.unary(TEST.unaryCall, create(SimpleRequestSchema, { responseStatus })),
        Status.UNKNOWN,
        "UnaryCall",
        message,
      );
      if (name === "special_status_message") return {};
      const call = client.stream(TEST.fullDuplexCall);
      const writer = call.requests.getWriter();
      await writer.write(create(StreamingOutputCallRequestSchema, { responseStatus })).catch(() => {});
      await writer.close().catch(() => {});
      await expectStatus(Array.fromAsync(call.responses), Status.UNKNOWN, "FullDuplexCall", message);
      return {};
    }
    case "custom_metadata": {
      const metadata: Metadata = [
        ["x-grpc-test-echo-initial", INITIAL_VALUE],
        ["x-grpc-test-echo-trailing-bin", TRAILING_VALUE],
      ];
      let header: Metadata | undefined;
      let trailer: Metadata | undefined;
      const response = await client.unary(
        TEST.unaryCall,
        create(SimpleRequestSchema, { responseSize: 314159, payload: payload(271828) }),
        { metadata, onHeader: (m) => header = m, onTrailer: (m) => trailer = m },
      );
      checkPayload(response.payload, 314159, "UnaryCall");
      checkEchoed(header, trailer, "UnaryCall");
      const call = client.stream(TEST.fullDuplexCall, { metadata });
      const writer = call.requests.getWriter();
      await writer.write(create(StreamingOutputCallRequestSchema, {
        responseParameters: [{ size: 314159 }],
        payload: payload(271828),
      }));
      await writer.close();
      const all = await Array.fromAsync(call.responses);
      check(all.length === 1, `${all.length} responses, want 1`);
      checkPayload(all[0]!.payload, 314159, "FullDuplexCall");
      checkEchoed(await call.header, await call.trailer, "FullDuplexCall");
      return {};
    }
    case "unimplemented_method": {
      await expectStatus(
        client.unary(TEST.unimplementedCall, create(EmptySchema)),
        Status.UNIMPLEMENTED,
        "UnimplementedCall",
      );
      return {};
    }
    case "unimplemented_service": {
      await expectStatus(
        client.unary(UNIMPLEMENTED.unimplementedCall, create(EmptySchema)),
        Status.UNIMPLEMENTED,
        "UnimplementedService",
      );
      return {};
    }
  }
}

/** One case's outcome. */
export interface CaseResult {
  /** The case. */
  testCase: string;
  /** Whether it passed. */
  ok: boolean;
  /** Milliseconds it took. */
  ms: number;
  /** Why it failed. */
  error?: string;
  /** Case details. */
  [key: string]: unknown;
}

/** Runs cases in order, each with its own bound, and collects results. */
export async function runInteropCases(client: GrpcClient, names: readonly string[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const name of names) {
    const start = performance.now();
    if (!(INTEROP_CASES as readonly string[]).includes(name)) {
      results.push({
        testCase: name,
        ok: false,
        ms: 0,
        error: `unknown --test_case ${JSON.stringify(name)}`,
      });
      continue;
    }
    try {
      const details = await runInteropCase(client, name as InteropCase);
      results.push({ testCase: name, ok: true, ms: performance.now() - start, ...details });
    } catch (error) {
      const text = error instanceof GrpcError ? `${error.message}` : String(error);
      results.push({ testCase: name, ok: false, ms: performance.now() - start, error: text });
    }
  }
  return results;
}
