/**
 * `gov backend add`: register a ComfyUI backend in `<workspace>/backends.toml`.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { ComfyUIClient } from "../../backends/comfyui/mod.ts";
import { addBackend, DEFAULT_MAX_QUEUE, DEFAULT_WEIGHT } from "../../backends/registry.ts";
import { workspaceFromFlag } from "../inputs.ts";
import { type Command, numberFlag, parseFlags, positionalArgs, printJson } from "../command.ts";
import { type Io, styles } from "../io.ts";
import { publicConfig } from "./shared.ts";

const NAME = "backend add";

/** The `gov backend add` command. */
export const addCommand: Command = {
  name: NAME,
  summary: "register a ComfyUI backend gov may route work to",
  help: `Usage: gov backend add <id> --host H [--port N] [flags]

Adds a [[backend]] table to <workspace>/backends.toml. The id is a short safe name
(letters, digits, '.', '_', '-'). gov then probes the backend once and says whether it
answers; an unreachable backend is still added (start it later), and routing only uses
it once it answers.

Flags:
      --host H          host name or IP address of ComfyUI (required)
      --port N          its port (default 8188)
      --name TEXT       human name (default: the id)
      --weight W        relative capacity for scheduling, > 0 (default ${DEFAULT_WEIGHT}); a backend
                        of weight 2 takes about twice the work of one of weight 1
      --tag T           a label (repeatable, or comma-separated), e.g. --tag sdxl --tag a100
      --max-queue N     most prompts gov lets wait there at once (default ${DEFAULT_MAX_QUEUE})
      --token T         send "Authorization: Bearer T" (ComfyUI behind an authenticating
                        proxy); stored in backends.toml, so keep that file private
      --tls             reach it over https/wss
      --no-probe        do not contact the backend
      --workspace DIR   the workspace (default: discovered)
      --json            print the added backend as JSON (token hidden)

Exit codes: 0 added, 2 bad input or the id/address is already registered (nothing changed).
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      host: { type: "string" },
      port: { type: "string" },
      name: { type: "string" },
      weight: { type: "string" },
      tag: { type: "string", multiple: true },
      "max-queue": { type: "string" },
      token: { type: "string" },
      tls: { type: "boolean" },
      "no-probe": { type: "boolean" },
      workspace: { type: "string" },
      json: { type: "boolean" },
    });
    const [id] = positionalArgs(NAME, positionals, ["<id>"]);
    if (values.host === undefined || values.host.trim() === "") {
      throw new UsageError(`gov ${NAME}: --host is required`, {
        hint: `usage: gov ${NAME} ${id} --host 10.0.0.5 --port 8188`,
      });
    }
    const port = numberFlag(NAME, "--port", values.port, 8188, {
      min: 1,
      max: 65535,
      integer: true,
    });
    const weight = numberFlag(NAME, "--weight", values.weight, DEFAULT_WEIGHT, { min: 0 });
    if (weight <= 0) {
      throw new UsageError(`gov ${NAME}: --weight must be a number > 0, got '${values.weight}'`);
    }
    const maxQueue = numberFlag(NAME, "--max-queue", values["max-queue"], DEFAULT_MAX_QUEUE, {
      min: 1,
      integer: true,
    });
    const tags = (values.tag ?? []).flatMap((t) => t.split(",")).map((t) => t.trim());
    if (tags.some((t) => t === "")) {
      throw new UsageError(`gov ${NAME}: --tag must not be empty`);
    }
    if (values.name !== undefined && values.name.trim() === "") {
      throw new UsageError(`gov ${NAME}: --name must not be empty`);
    }
    const ws = workspaceFromFlag(values.workspace, io);
    const b = await addBackend(ws, {
      id,
      host: values.host.trim(),
      port,
      name: values.name,
      weight,
      tags,
      max_queue: maxQueue,
      token: values.token,
      tls: values.tls ? true : undefined,
    });
    let reachable: { ok: boolean; detail: string } | undefined;
    if (!values["no-probe"]) {
      const client = new ComfyUIClient({ ...b, timeoutMs: 3000 });
      try {
        const { queueRemaining } = await client.probe();
        reachable = { ok: true, detail: `answers, queue ${queueRemaining}` };
      } catch (err) {
        reachable = { ok: false, detail: (err as { reason?: string }).reason ?? String(err) };
      }
    }
    if (values.json) {
      printJson(io, {
        ...publicConfig(b),
        ...(reachable ? { reachable: reachable.ok, probe: reachable.detail } : {}),
      });
      return 0;
    }
    const s = styles(io);
    const url = new ComfyUIClient(b).baseUrl;
    io.out(`added backend ${s.bold(b.id)} (${url}) to ${ws.root}/backends.toml\n`);
    if (reachable?.ok) io.out(`  ${s.green("reachable")}: ${reachable.detail}\n`);
    else if (reachable) {
      io.err(`${s.yellow("warning:")} ${b.id} is not reachable now: ${reachable.detail}\n`);
      io.err("  it stays registered; gov routes to it once it answers\n");
    }
    return 0;
  },
};
