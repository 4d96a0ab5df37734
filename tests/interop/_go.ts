/**
 * Builds the Go interop peers under `tests/interop/<name>/` in GOPATH mode against
 * Debian's packages (`/usr/share/gocode`) and the peers' shared packages
 * (`tests/interop/gopath/src/sidechanneltest/`), caching binaries by source hash.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const CACHE = `${ROOT}.cache/go`;
const SHARED = `${ROOT}tests/interop/gopath`;

async function _goSources(dir: string, parts: string[]): Promise<void> {
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && dir.startsWith(SHARED)) await _goSources(path, parts);
    if (!entry.isFile || !entry.name.endsWith(".go")) continue;
    parts.push(path.slice(ROOT.length), await Deno.readTextFile(path));
  }
}

async function _hashDir(dir: string): Promise<string> {
  const parts: string[] = [];
  await _goSources(dir, parts);
  await _goSources(SHARED, parts);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Returns the path of the built peer `tests/interop/<name>`, building it if needed.
 * Safe to call from parallel test files: builds land under a unique name, then rename.
 */
export async function buildGoPeer(name: string): Promise<string> {
  const dir = `${ROOT}tests/interop/${name}`;
  const hash = await _hashDir(dir);
  const binary = `${CACHE}/bin/${name}-${hash}`;
  try {
    await Deno.stat(binary);
    return binary;
  } catch {
    // build below
  }
  await Deno.mkdir(`${CACHE}/bin`, { recursive: true });
  const tmp = `${binary}.${crypto.randomUUID()}`;
  const out = await new Deno.Command("go", {
    args: ["build", "-o", tmp, "."],
    cwd: dir,
    env: {
      GO111MODULE: "off",
      GOPATH: `/usr/share/gocode:${SHARED}:${CACHE}/gopath`,
      GOCACHE: `${CACHE}/build`,
      GOFLAGS: "-mod=mod",
      CGO_ENABLED: "0",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`go build ${name} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  await Deno.rename(tmp, binary);
  return binary;
}
