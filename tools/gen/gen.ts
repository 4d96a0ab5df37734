/**
 * `deno task gen`: regenerates the protobuf code, offline from npm packages.
 *
 * 1. `npm ci` in `tools/gen` installs the pinned `@bufbuild/buf` (its binary ships in
 *    the npm package) and `@bufbuild/protoc-gen-es` v2.
 * 2. `buf generate` runs protoc-gen-es (`tools/gen/buf.gen.yaml`) on
 *    - `proto/gitaly/` → `src/git/gen/` (Gitaly's protos, part of the library);
 *    - `proto/grpc/testing/` → `tests/interop/gen/grpc/testing/` (gRPC interop
 *      protos, for tests only, not published).
 * 3. `deno fmt` formats the output, which is committed.
 *
 * Needs `node`/`npm` on PATH.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const BUF = `${ROOT}tools/gen/node_modules/.bin/buf`;
const TEMPLATE = "tools/gen/buf.gen.yaml";

const TARGETS = [
  { input: ["proto/gitaly"], out: "src/git/gen" },
  { input: ["proto", "--exclude-path", "proto/gitaly"], out: "tests/interop/gen" },
];

async function run(cmd: string, args: string[]): Promise<void> {
  const { code } = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "inherit", stderr: "inherit" })
    .output();
  if (code !== 0) throw new Error(`Cannot generate: ${cmd} ${args.join(" ")} exited with ${code}`);
}

/** Removes previously generated files, so deleted protos leave nothing behind. */
async function clean(dir: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${ROOT}${dir}`)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) await clean(path);
    else if (entry.name.endsWith("_pb.ts")) await Deno.remove(`${ROOT}${path}`);
  }
}

await run("npm", ["--prefix", "tools/gen", "ci", "--no-audit", "--no-fund"]);
for (const { input, out } of TARGETS) {
  await clean(out);
  await run(BUF, ["generate", ...input, "--template", TEMPLATE, "-o", out]);
}
await run(Deno.execPath(), ["fmt", ...TARGETS.map((t) => t.out)]);
