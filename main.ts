/**
 * gov: runs and governs ComfyUI on GPU hosts.
 *
 * @module
 */
import { runCli } from "./src/cli/main.ts";
import { processIo } from "./src/cli/io.ts";

if (import.meta.main) {
  const code = await runCli(Deno.args, processIo());
  Deno.exit(code);
}
