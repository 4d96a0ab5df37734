/**
 * Go's text formats that Gitaly's error messages embed: `%q` quoting and the
 * `exec.ExitError` text. Private to `src/git`.
 *
 * @module
 */

const _HEX = "0123456789abcdef";
const _PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function _hex2(n: number): string {
  return _HEX[n >> 4]! + _HEX[n & 15]!;
}

function _escapeRune(r: number): string {
  if (r === 0x22) return '\\"';
  if (r === 0x5c) return "\\\\";
  if (r === 0x20 || (r > 0x20 && r !== 0x7f && _PRINTABLE.test(String.fromCodePoint(r)))) {
    return String.fromCodePoint(r);
  }
  switch (r) {
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x0b:
      return "\\v";
  }
  if (r < 0x20 || r === 0x7f) return "\\x" + _hex2(r);
  if (r < 0x10000) return "\\u" + r.toString(16).padStart(4, "0");
  return "\\U" + r.toString(16).padStart(8, "0");
}

/**
 * Decodes one UTF-8 sequence at `i`: `[rune, length]`, or `[-1, 1]` for an invalid byte
 * (as Go's `utf8.DecodeRune` reports `RuneError` with width 1).
 */
function _decodeRune(bytes: Uint8Array, i: number): [number, number] {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return [b0, 1];
  let need: number;
  let min: number;
  let r: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [need, min, r] = [1, 0x80, b0 & 0x1f];
  else if (b0 >= 0xe0 && b0 <= 0xef) [need, min, r] = [2, 0x800, b0 & 0x0f];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [need, min, r] = [3, 0x10000, b0 & 0x07];
  else return [-1, 1];
  if (i + need >= bytes.length) return [-1, 1];
  for (let k = 1; k <= need; k++) {
    const b = bytes[i + k]!;
    if ((b & 0xc0) !== 0x80) return [-1, 1];
    r = (r << 6) | (b & 0x3f);
  }
  if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return [-1, 1];
  return [r, need + 1];
}

/**
 * Quotes bytes like Go's `strconv.Quote` (the `%q` verb): a double-quoted string with
 * Go escapes; printable Unicode is kept, invalid UTF-8 bytes become `\xNN`.
 *
 * @param input the bytes or text
 * @returns the quoted text
 */
export function _goQuote(input: Uint8Array | string): string {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  let out = '"';
  for (let i = 0; i < bytes.length;) {
    const [r, width] = _decodeRune(bytes, i);
    out += r < 0 ? "\\x" + _hex2(bytes[i]!) : _escapeRune(r);
    i += width;
  }
  return out + '"';
}

/** Go's `syscall.Signal.String()` texts for the signals git may die of. */
const _SIGNAL_TEXT: Readonly<Record<string, string>> = {
  SIGHUP: "hangup",
  SIGINT: "interrupt",
  SIGQUIT: "quit",
  SIGILL: "illegal instruction",
  SIGTRAP: "trace/breakpoint trap",
  SIGABRT: "aborted",
  SIGBUS: "bus error",
  SIGFPE: "floating point exception",
  SIGKILL: "killed",
  SIGUSR1: "user defined signal 1",
  SIGSEGV: "segmentation fault",
  SIGUSR2: "user defined signal 2",
  SIGPIPE: "broken pipe",
  SIGALRM: "alarm clock",
  SIGTERM: "terminated",
  SIGXCPU: "CPU time limit exceeded",
  SIGXFSZ: "file size limit exceeded",
};

/**
 * The text of Go's `exec.ExitError` for a process status: `exit status 128`, or
 * `signal: killed` for a process killed by a signal.
 *
 * @param status how the process ended
 * @returns the text
 */
export function _goExitText(status: { readonly code: number; readonly signal: string | null }): string {
  if (status.signal !== null) return `signal: ${_SIGNAL_TEXT[status.signal] ?? status.signal}`;
  return `exit status ${status.code}`;
}
