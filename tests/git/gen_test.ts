import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { protobufCodec } from "../../mod.ts";
import { PackfileNegotiationStatisticsSchema } from "../../src/git/gen/packfile_pb.ts";
import { RepositorySchema } from "../../src/git/gen/shared_pb.ts";
import {
  PostUploadPackRequestSchema,
  PostUploadPackV3RequestSchema,
  PostUploadPackWithSidechannelRequestSchema,
  PostUploadPackWithSidechannelResponseSchema,
  SmartHTTPService,
} from "../../src/git/gen/smarthttp_pb.ts";
import {
  SSHService,
  SSHUploadPackWithSidechannelRequestSchema,
  SSHUploadPackWithSidechannelResponseSchema,
} from "../../src/git/gen/ssh_pb.ts";
import { concat } from "../_util.ts";

/** A length-delimited field: tag byte, one-byte length, bytes. */
function ld(tag: number, value: string | Uint8Array): Uint8Array {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  assert.ok(bytes.byteLength < 128);
  return concat([new Uint8Array([tag, bytes.byteLength]), bytes]);
}

// Hand-computed encoding of a Repository with every field set:
// tag = field << 3 | 2 (length-delimited).
const repositoryBytes = concat([
  ld(0x12, "default"), // 2 storage_name
  ld(0x1a, "@hashed/aa/bb.git"), // 3 relative_path
  ld(0x22, "objects"), // 4 git_object_directory
  ld(0x2a, "alt1"), // 5 git_alternate_object_directories
  ld(0x2a, "alt2"),
  ld(0x32, "project-1"), // 6 gl_repository
  ld(0x42, "group/app"), // 8 gl_project_path
]);

const repository = create(RepositorySchema, {
  storageName: "default",
  relativePath: "@hashed/aa/bb.git",
  gitObjectDirectory: "objects",
  gitAlternateObjectDirectories: ["alt1", "alt2"],
  glRepository: "project-1",
  glProjectPath: "group/app",
});

Deno.test("gitaly.Repository encodes with Gitaly's field numbers", () => {
  assert.deepEqual(toBinary(RepositorySchema, repository), repositoryBytes);
  assert.equal(RepositorySchema.typeName, "gitaly.Repository");
  assert.deepEqual(RepositorySchema.fields.map((f) => [f.name, f.number]), [
    ["storage_name", 2],
    ["relative_path", 3],
    ["git_object_directory", 4],
    ["git_alternate_object_directories", 5],
    ["gl_repository", 6],
    ["gl_project_path", 8],
  ]);
});

Deno.test("gitaly.PostUploadPackWithSidechannelRequest encodes to hand-computed bytes and decodes back", () => {
  const request = create(PostUploadPackWithSidechannelRequestSchema, {
    repository,
    gitConfigOptions: ["uploadpack.allowFilter=true", "x=y"],
    gitProtocol: "version=2",
  });
  const expected = concat([
    ld(0x0a, repositoryBytes), // 1 repository
    ld(0x12, "uploadpack.allowFilter=true"), // 2 git_config_options
    ld(0x12, "x=y"),
    ld(0x1a, "version=2"), // 3 git_protocol
  ]);
  assert.equal(expected.byteLength, 2 + repositoryBytes.byteLength + 29 + 5 + 11);
  const codec = protobufCodec(PostUploadPackWithSidechannelRequestSchema);
  const bytes = codec.encode(request);
  assert.deepEqual(bytes, expected);
  const decoded = codec.decode(expected);
  assert.equal(decoded.repository?.relativePath, "@hashed/aa/bb.git");
  assert.deepEqual(decoded.repository?.gitAlternateObjectDirectories, ["alt1", "alt2"]);
  assert.deepEqual(decoded.gitConfigOptions, ["uploadpack.allowFilter=true", "x=y"]);
  assert.equal(decoded.gitProtocol, "version=2");
  // An empty request is an empty message.
  assert.deepEqual(codec.encode(create(PostUploadPackWithSidechannelRequestSchema)), new Uint8Array());
});

Deno.test("gitaly.PostUploadPackWithSidechannelResponse decodes packfile negotiation statistics", () => {
  const stats = concat([
    new Uint8Array([0x08, 0xac, 0x02]), // 1 payload_size = 300 (varint)
    new Uint8Array([0x10, 0x02]), // 2 packets = 2
    ld(0x1a, "multi_ack"), // 3 caps
    new Uint8Array([0x20, 0x01]), // 4 wants = 1
    new Uint8Array([0x28, 0x03]), // 5 haves = 3
    new Uint8Array([0x30, 0x04]), // 6 shallows = 4
    ld(0x3a, "deepen 1"), // 7 deepen
    ld(0x42, "blob:none"), // 8 filter
  ]);
  const response = fromBinary(PostUploadPackWithSidechannelResponseSchema, ld(0x0a, stats));
  const s = response.packfileNegotiationStatistics!;
  assert.deepEqual(
    [s.payloadSize, s.packets, s.caps, s.wants, s.haves, s.shallows, s.deepen, s.filter],
    [300n, 2n, ["multi_ack"], 1n, 3n, 4n, "deepen 1", "blob:none"],
  );
  assert.deepEqual(toBinary(PackfileNegotiationStatisticsSchema, s), stats);
  const ssh = fromBinary(SSHUploadPackWithSidechannelResponseSchema, ld(0x0a, stats));
  assert.equal(ssh.packfileNegotiationStatistics?.packets, 2n);
});

Deno.test("gitaly.PostUploadPackRequest and PostUploadPackV3Request use their own field numbers", () => {
  const data = new Uint8Array([0x30, 0x30, 0x30, 0x30]);
  assert.deepEqual(
    toBinary(
      PostUploadPackRequestSchema,
      create(PostUploadPackRequestSchema, { data, gitProtocol: "version=2" }),
    ),
    concat([ld(0x12, data), ld(0x22, "version=2")]), // data = 2, git_protocol = 4
  );
  assert.deepEqual(
    toBinary(
      PostUploadPackV3RequestSchema,
      create(PostUploadPackV3RequestSchema, { data, gitProtocol: "version=2" }),
    ),
    concat([ld(0x1a, "version=2"), ld(0x22, data)]), // git_protocol = 3, data = 4
  );
  assert.deepEqual(
    toBinary(
      SSHUploadPackWithSidechannelRequestSchema,
      create(SSHUploadPackWithSidechannelRequestSchema, {
        gitConfigOptions: ["a=b"],
        gitProtocol: "version=2",
      }),
    ),
    concat([ld(0x12, "a=b"), ld(0x1a, "version=2")]),
  );
});

Deno.test("gitaly services have Gitaly's names, methods and streaming kinds", () => {
  assert.equal(SmartHTTPService.typeName, "gitaly.SmartHTTPService");
  assert.deepEqual(SmartHTTPService.methods.map((m) => [m.name, m.methodKind]), [
    ["InfoRefsUploadPack", "server_streaming"],
    ["PostUploadPack", "bidi_streaming"],
    ["PostUploadPackWithSidechannel", "unary"],
    ["PostUploadPackV3", "bidi_streaming"],
  ]);
  assert.equal(
    SmartHTTPService.method.postUploadPackWithSidechannel.input,
    PostUploadPackWithSidechannelRequestSchema,
  );
  assert.equal(SSHService.typeName, "gitaly.SSHService");
  assert.deepEqual(SSHService.methods.map((m) => [m.name, m.methodKind]), [[
    "SSHUploadPackWithSidechannel",
    "unary",
  ]]);
});
