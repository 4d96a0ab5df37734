/**
 * Turns benchmark results into SVG bar charts for the README:
 *
 * - `clone.json` (from `bench/clone_bench.ts`) → `clone.svg`: median `git clone` time
 *   per source (file:// and the front's three transports) with the ratio, and the peak
 *   RSS of the serve process under ten concurrent clones against the 200 MiB limit;
 * - `deno bench --json` output of `bench/transport_bench.ts` → `transport.svg`:
 *   throughput (MB/s, from the size in the group name and the mean time) per variant.
 *
 * Run: deno run -A bench/chart.ts [--clone bench/results/clone.json]
 *        [--transport bench/results/transport_bench.json] [--out bench/results]
 *
 * Produce the transport JSON with
 * `deno bench -A --json bench/transport_bench.ts > bench/results/transport_bench.json`.
 * Missing inputs are skipped.
 */

const here = new URL(".", import.meta.url).pathname;
let clonePath = `${here}results/clone.json`;
let transportPath = `${here}results/transport_bench.json`;
let outDir = `${here}results`;
for (let i = 0; i < Deno.args.length; i++) {
  const arg = Deno.args[i]!;
  const value = Deno.args[++i];
  if (value === undefined) throw new Error(`${arg} needs a value`);
  if (arg === "--clone") clonePath = value;
  else if (arg === "--transport") transportPath = value;
  else if (arg === "--out") outDir = value;
  else throw new Error(`unknown argument ${arg}`);
}

interface Row {
  label: string;
  value: number;
  text: string;
  highlight?: boolean;
}

interface Panel {
  title: string;
  rows: Row[];
  /** A vertical marker line (a limit or target) and its label. */
  marker?: { value: number; label: string };
}

const WIDTH = 860;
const LABEL = 310;
const BAR_MAX = WIDTH - LABEL - 130;
const ROW = 26;

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Stacked horizontal bar panels, one SVG. */
function render(panels: Panel[], footer: string): string {
  const parts: string[] = [];
  let y = 10;
  for (const panel of panels) {
    y += 22;
    parts.push(`<text x="10" y="${y}" class="title">${escape(panel.title)}</text>`);
    y += 12;
    const max = Math.max(...panel.rows.map((r) => r.value), panel.marker?.value ?? 0) * 1.05 || 1;
    const top = y;
    for (const row of panel.rows) {
      const w = Math.max(1, (row.value / max) * BAR_MAX);
      parts.push(
        `<text x="${LABEL - 8}" y="${y + 17}" class="label" text-anchor="end">${escape(row.label)}</text>`,
        `<rect x="${LABEL}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW - 8}" class="${
          row.highlight ? "bar base" : "bar"
        }"/>`,
        `<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + 17}" class="value">${escape(row.text)}</text>`,
      );
      y += ROW;
    }
    if (panel.marker !== undefined) {
      const x = LABEL + (panel.marker.value / max) * BAR_MAX;
      parts.push(
        `<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${y}" class="marker"/>`,
        `<text x="${(x + 4).toFixed(1)}" y="${y + 12}" class="note">${escape(panel.marker.label)}</text>`,
      );
      y += 14;
    }
    y += 8;
  }
  y += 10;
  parts.push(`<text x="10" y="${y}" class="note">${escape(footer)}</text>`);
  y += 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}">`,
    "<style>",
    "text{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:13px;fill:#24292f}",
    ".title{font-weight:600;font-size:14px}.note{font-size:11px;fill:#57606a}.value{font-size:12px}",
    ".bar{fill:#4f7fd6}.base{fill:#8c959f}.marker{stroke:#cf222e;stroke-width:1.5;stroke-dasharray:4 3}",
    "</style>",
    `<rect width="${WIDTH}" height="${y}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

async function readJson(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

interface CloneResult {
  date: string;
  cpu: string;
  cores: number;
  deno: string;
  git: string;
  packBytes: number;
  rounds: number;
  clone: { variant: string; median: number; ratio: number }[];
  memory: { transport: string; clones: number; ok: number; vmHwm: number }[];
  limitBytes: number;
  targetRatio: number;
}

const written: string[] = [];
const clone = await readJson(clonePath) as CloneResult | undefined;
if (clone !== undefined) {
  const MiB = 1024 * 1024;
  const baseline = clone.clone.find((c) => c.variant === "file")!.median;
  const panels: Panel[] = [{
    title: `git clone of a ${
      (clone.packBytes / MiB).toFixed(0)
    } MiB pack (with checkout), median of ${clone.rounds}`,
    rows: clone.clone.map((c) => ({
      label: c.variant === "file" ? "git clone --no-local file://" : `front, ${c.variant}`,
      value: c.median,
      text: `${c.median.toFixed(2)} s  (${c.ratio.toFixed(2)}×)`,
      highlight: c.variant === "file",
    })),
    marker: { value: baseline * clone.targetRatio, label: `${clone.targetRatio}× file://` },
  }];
  if (clone.memory.length > 0) {
    panels.push({
      title: `peak RSS of the serve process, ${clone.memory[0]!.clones} concurrent clones`,
      rows: clone.memory.map((m) => ({
        label: `${m.transport} (${m.ok}/${m.clones} ok)`,
        value: m.vmHwm / MiB,
        text: `${(m.vmHwm / MiB).toFixed(0)} MiB`,
      })),
      marker: { value: clone.limitBytes / MiB, label: `${(clone.limitBytes / MiB).toFixed(0)} MiB limit` },
    });
  }
  const svg = render(
    panels,
    `${clone.cpu} × ${clone.cores}, Deno ${clone.deno}, ${clone.git}, ${clone.date.slice(0, 10)}`,
  );
  await Deno.writeTextFile(`${outDir}/clone.svg`, svg);
  written.push(`${outDir}/clone.svg`);
}

interface DenoBenchJson {
  runtime: string;
  cpu: string;
  benches: {
    group: string | null;
    name: string;
    baseline: boolean;
    results: ({ ok: { avg: number; n: number } } | { failed: unknown })[];
  }[];
}

const transport = await readJson(transportPath) as DenoBenchJson | undefined;
if (transport !== undefined) {
  const groups = new Map<string, Row[]>();
  for (const bench of transport.benches) {
    const result = bench.results[0];
    if (result === undefined || !("ok" in result)) continue;
    const group = bench.group ?? "";
    const size = /(\d+(?:\.\d+)?)\s*(MiB|GiB)/.exec(group) ?? /(\d+(?:\.\d+)?)\s*(MiB|GiB)/.exec(bench.name);
    const bytes = size === null ? null : Number(size[1]) * (size[2] === "GiB" ? 1024 ** 3 : 1024 ** 2);
    const seconds = result.ok.avg / 1e9;
    const row: Row = bytes === null
      ? { label: bench.name, value: seconds * 1000, text: `${(seconds * 1000).toFixed(1)} ms` }
      : {
        label: bench.name,
        value: bytes / seconds / 1e6,
        text: `${(bytes / seconds / 1e6).toFixed(0)} MB/s`,
      };
    row.highlight = bench.baseline;
    const rows = groups.get(group) ?? [];
    rows.push(row);
    groups.set(group, rows);
  }
  const panels = [...groups].map(([title, rows]) => ({ title, rows }));
  await Deno.writeTextFile(
    `${outDir}/transport.svg`,
    render(panels, `${transport.cpu}, ${transport.runtime}`),
  );
  written.push(`${outDir}/transport.svg`);
}

// The repository formats SVG and JSON too (`deno fmt --check` in `deno task check`): format the outputs and the
// inputs that are read from here, with the repository's configuration.
const inputs = [clonePath, transportPath].filter((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});
if (written.length > 0) {
  const config = new URL("../deno.json", import.meta.url).pathname;
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", "--config", config, ...written, ...inputs],
    stdout: "null",
  }).output();
}

// deno-lint-ignore no-console
console.log(written.length === 0 ? "nothing to chart (no input files)" : `wrote ${written.join(", ")}`);
