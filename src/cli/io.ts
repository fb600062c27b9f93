/**
 * The I/O a command sees. Commands never touch `Deno.stdout`, `console` or `Deno.exit`
 * themselves: they get an {@linkcode Io}, so tests can run any command in-process and read
 * what it printed.
 *
 * @module
 */

/** What a command may read and print. */
export interface Io {
  /** Writes text to standard output as-is. */
  out(text: string): void;
  /** Writes text to standard error as-is. */
  err(text: string): void;
  /** Whether stdout is a terminal (decides colour and progress lines). */
  stdoutIsTerminal: boolean;
  /** Whether stdin is a terminal (decides interactive prompts). */
  stdinIsTerminal: boolean;
  /**
   * Whether colour is allowed: stdout and stderr both terminals, and no `NO_COLOR`. One
   * {@linkcode styles} serves both streams, so `gov run 2>log` must not put escape codes into
   * the log just because stdout is a terminal.
   */
  color: boolean;
  /** Environment lookup. */
  env(name: string): string | undefined;
  /** Working folder of the invocation. */
  cwd(): string;
  /** Prompts on stderr and reads one line from stdin; null at end of input. */
  readLine(prompt: string): Promise<string | null>;
}

/**
 * The real terminal I/O of the gov process.
 *
 * @example
 * ```ts
 * import { processIo } from "@/cli/io.ts";
 *
 * const io = processIo();
 * io.out("hello\n");
 * ```
 */
export function processIo(): Io {
  const enc = new TextEncoder();
  const stdoutIsTerminal = Deno.stdout.isTerminal();
  const noColor = Deno.env.get("NO_COLOR");
  let buffered = "";
  const stdout = closableWriter(Deno.stdout);
  const stderr = closableWriter(Deno.stderr);
  return {
    out: (t) => stdout(enc.encode(t)),
    err: (t) => stderr(enc.encode(t)),
    stdoutIsTerminal,
    stdinIsTerminal: Deno.stdin.isTerminal(),
    color: stdoutIsTerminal && Deno.stderr.isTerminal() &&
      (noColor === undefined || noColor === ""),
    env: (n) => Deno.env.get(n),
    cwd: () => Deno.cwd(),
    async readLine(prompt: string) {
      stderr(enc.encode(prompt));
      const buf = new Uint8Array(1024);
      while (!buffered.includes("\n")) {
        const n = await Deno.stdin.read(buf);
        if (n === null) {
          if (buffered === "") return null;
          const line = buffered;
          buffered = "";
          return line;
        }
        buffered += new TextDecoder().decode(buf.subarray(0, n));
      }
      const i = buffered.indexOf("\n");
      const line = buffered.slice(0, i).replace(/\r$/, "");
      buffered = buffered.slice(i + 1);
      return line;
    },
  };
}

/**
 * A writer that never throws for a reader gone away. `gov node add … | head -1` closes
 * stdout after one line; the operation must still finish (and its journal and state stay
 * whole), so output errors are dropped and later writes to that stream skipped. Other
 * write errors are dropped too: printing is never a reason to abort a half-done change.
 */
function closableWriter(w: { writeSync(p: Uint8Array): number }): (data: Uint8Array) => void {
  let closed = false;
  return (data) => {
    if (closed) return;
    try {
      writeAllSync(w, data);
    } catch {
      closed = true;
    }
  };
}

function writeAllSync(w: { writeSync(p: Uint8Array): number }, data: Uint8Array) {
  let off = 0;
  while (off < data.length) off += w.writeSync(data.subarray(off));
}

/**
 * An in-memory {@linkcode Io} for tests: captures output, feeds scripted input lines.
 *
 * @example
 * ```ts
 * import { memoryIo } from "@/cli/io.ts";
 *
 * const io = memoryIo({ env: { NO_COLOR: "1" } });
 * io.out("x");
 * console.assert(io.stdout === "x");
 * ```
 */
export function memoryIo(
  opts: { env?: Record<string, string>; cwd?: string; input?: string[]; terminal?: boolean } = {},
): Io & { stdout: string; stderr: string } {
  const input = [...(opts.input ?? [])];
  const io = {
    stdout: "",
    stderr: "",
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
    stdoutIsTerminal: opts.terminal ?? false,
    stdinIsTerminal: opts.terminal ?? false,
    color: false,
    env: (n: string) => opts.env?.[n],
    cwd: () => opts.cwd ?? Deno.cwd(),
    readLine(prompt: string) {
      io.stderr += prompt;
      return Promise.resolve(input.length ? input.shift()! : null);
    },
  };
  return io;
}

/** ANSI styles that collapse to plain text when colour is off. */
export interface Styles {
  /** Bold text. */
  bold(s: string): string;
  /** Green text (success). */
  green(s: string): string;
  /** Red text (failure). */
  red(s: string): string;
  /** Yellow text (warning). */
  yellow(s: string): string;
  /** Dim text (secondary detail). */
  dim(s: string): string;
}

/**
 * Styles for an {@linkcode Io}: real colour only when `io.color` is true.
 *
 * @example
 * ```ts
 * import { processIo, styles } from "@/cli/io.ts";
 *
 * const s = styles(processIo());
 * console.log(s.green("healthy"));
 * ```
 */
export function styles(io: Io): Styles {
  const wrap = (a: number, b: number) => (s: string) => io.color ? `\x1b[${a}m${s}\x1b[${b}m` : s;
  return {
    bold: wrap(1, 22),
    green: wrap(32, 39),
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    dim: wrap(2, 22),
  };
}
