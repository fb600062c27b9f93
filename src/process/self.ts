/**
 * How gov starts another gov (for `gov switch` spawning a detached `gov run`): the compiled
 * binary re-executes itself; from source, Deno runs main.ts with the same permission set.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";

/**
 * The program and leading arguments that start this same gov.
 *
 * @example
 * ```ts
 * import { selfCommand } from "@/process/self.ts";
 * import { spawnProcess } from "@/process/run.ts";
 *
 * const { command, args } = selfCommand();
 * spawnProcess(command, [...args, "run", "--detach"]);
 * ```
 */
export function selfCommand(): { command: string; args: string[] } {
  const fromEnv = Deno.env.get("GOV_BIN");
  if (fromEnv) return { command: fromEnv, args: [] };
  const main = new URL("../../main.ts", import.meta.url);
  // A compiled binary embeds its modules; its main module is not a file on disk.
  if (main.protocol !== "file:" || Deno.mainModule.includes("/deno-compile-")) {
    return { command: Deno.execPath(), args: [] };
  }
  const config = fromFileUrl(new URL("../../deno.json", import.meta.url));
  return {
    command: Deno.execPath(),
    args: ["run", "-q", "-P=gov", "--config", config, fromFileUrl(main)],
  };
}
