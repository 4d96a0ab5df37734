/**
 * Command-line flags in the style of gRPC's interop programs: `--name=value`,
 * `--name value`, and bare `--flag` for booleans.
 *
 * @module
 */

/** Parses `args` against the defaults; unknown flags throw. */
export function parseFlags<T extends Record<string, string | boolean>>(
  args: readonly string[],
  defaults: T,
): T {
  const out: Record<string, string | boolean> = { ...defaults };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const match = /^--?([a-z_]+)(?:=(.*))?$/.exec(arg);
    if (match === null) throw new TypeError(`Cannot parse flags: unexpected argument ${JSON.stringify(arg)}`);
    const [, name, inline] = match;
    if (!(name! in defaults)) throw new TypeError(`Cannot parse flags: unknown flag --${name}`);
    if (typeof defaults[name!] === "boolean") {
      const value = inline ?? "true";
      if (value !== "true" && value !== "false") {
        throw new TypeError(`Cannot parse flags: --${name} takes true or false, received ${value}`);
      }
      out[name!] = value === "true";
    } else {
      const value = inline ?? args[++i];
      if (value === undefined) throw new TypeError(`Cannot parse flags: --${name} needs a value`);
      out[name!] = value;
    }
  }
  return out as T;
}

/** Writes one line to stdout (these programs talk to their callers line by line). */
export function printLine(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  for (let offset = 0; offset < bytes.byteLength;) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}
