/**
 * Where `gov serve` and `gov submit` get the gateway's token: `--token-file`, then
 * `$GOV_SERVE_TOKEN`, then `--token` (which every `ps` shows, so it earns a warning).
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import type { Io } from "../io.ts";

/**
 * The token from the flags and the environment, or undefined. Warns on stderr when it
 * came from `--token`.
 *
 * @example
 * ```ts
 * import type { Io } from "../io.ts";
 * declare const io: Io;
 * const token = await resolveToken("serve", { "token-file": "/run/secrets/gov" }, io);
 * ```
 */
export async function resolveToken(
  command: string,
  values: { token?: string; "token-file"?: string },
  io: Io,
): Promise<string | undefined> {
  if (values.token !== undefined && values["token-file"] !== undefined) {
    throw new UsageError(`gov ${command}: give --token or --token-file, not both`, {
      hint: "prefer --token-file FILE (or GOV_SERVE_TOKEN): --token shows in `ps`",
    });
  }
  let token: string | undefined;
  if (values["token-file"] !== undefined) {
    const path = values["token-file"];
    try {
      // A trailing newline is how editors and `echo` end the file, not part of the token.
      token = (await Deno.readTextFile(path)).replace(/\r?\n$/, "");
    } catch (err) {
      throw new UsageError(
        `gov ${command}: cannot read --token-file ${path}: ${(err as Error).message}`,
        { hint: "give a readable file that holds only the token" },
      );
    }
    if (token.trim() === "" || /[\r\n]/.test(token)) {
      throw new UsageError(
        `gov ${command}: --token-file ${path} must hold one non-empty line (the token)`,
      );
    }
  } else if (values.token !== undefined) {
    token = values.token;
    io.err(
      "warning: --token is visible to every user in process listings (ps); " +
        "use --token-file FILE or GOV_SERVE_TOKEN instead\n",
    );
  } else {
    token = io.env("GOV_SERVE_TOKEN") ?? undefined;
  }
  if (token !== undefined && token.trim() === "") {
    throw new UsageError(`gov ${command}: the token is empty`, {
      hint: "put the token in a file and pass --token-file FILE, or set GOV_SERVE_TOKEN",
    });
  }
  return token;
}
