/**
 * `gov backend list`: the registered backends with their live health.
 *
 * @module
 */
import { HealthMonitor } from "../../backends/health.ts";
import { readBackends } from "../../backends/registry.ts";
import type { BackendStatus } from "../../backends/types.ts";
import { workspaceFromFlag } from "../inputs.ts";
import { UsageError } from "../../errors.ts";
import { type Command, numberFlag, parseFlags, positionalArgs, printJson } from "../command.ts";
import { type Io, styles } from "../io.ts";
import { backendJson, gib, table } from "./shared.ts";

const NAME = "backend list";
const MODELS_SHOWN = 6;

/** The `gov backend list` command. */
export const listCommand: Command = {
  name: NAME,
  summary: "list backends with live health, queue, VRAM, node classes and models",
  help: `Usage: gov backend list [--json] [--no-probe] [--probe-timeout MS] [--workspace DIR]

Lists the backends of <workspace>/backends.toml. Unless --no-probe, gov probes each once,
all at the same time (GET /prompt, /system_stats, /object_info), and shows whether it is up,
its queue (queue_remaining / max_queue), free and total VRAM, ComfyUI version, how many node
classes it has and which model files its loaders offer.

Flags:
      --json            print {"backends": [...]}: configuration (token hidden), state,
                        last_error, queue_remaining, vram, comfyui_version, node_classes and
                        models (counts) and model_files (names by loader input)
      --no-probe        show the configuration only, without contacting any backend
      --probe-timeout MS  a probe request without an answer by then fails (default 3000;
                        as in gov serve; --timeout MS is an older name of it)
      --workspace DIR   the workspace (default: discovered)

Exit code 0 whatever the backends' health: read it from the output.
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      json: { type: "boolean" },
      "no-probe": { type: "boolean" },
      "probe-timeout": { type: "string" },
      // The older name; kept so scripts keep working, left out of --help.
      timeout: { type: "string" },
      workspace: { type: "string" },
    });
    positionalArgs(NAME, positionals, []);
    if (values.timeout !== undefined && values["probe-timeout"] !== undefined) {
      throw new UsageError(`gov ${NAME}: --timeout is an older name of --probe-timeout`, {
        hint: "pass --probe-timeout only",
      });
    }
    const probeFlag = values.timeout !== undefined ? "--timeout" : "--probe-timeout";
    const timeoutMs = numberFlag(NAME, probeFlag, values.timeout ?? values["probe-timeout"], 3000, {
      min: 100,
      max: 600_000,
      integer: true,
    });
    const ws = workspaceFromFlag(values.workspace, io);
    const backends = await readBackends(ws);
    let statuses: BackendStatus[] | undefined;
    if (!values["no-probe"] && backends.length > 0) {
      // One round of the gateway's own monitor: the same probes, verdicts and model rules.
      const monitor = new HealthMonitor(backends, {
        timeoutMs,
        objectInfoTimeoutMs: Math.max(timeoutMs, 10_000),
        downAfter: 1,
        upAfter: 1,
        followStatus: false,
      });
      try {
        await monitor.probeAll();
        statuses = monitor.statuses();
      } finally {
        await monitor.stop();
      }
    }
    const statusOf = (id: string) => statuses?.find((s) => s.id === id);
    if (values.json) {
      printJson(io, { backends: backends.map((b) => backendJson(b, statusOf(b.id))) });
      return 0;
    }
    if (backends.length === 0) {
      io.out(`no backends in ${ws.root}/backends.toml\n`);
      io.out("  add one with `gov backend add <id> --host H --port N`\n");
      return 0;
    }
    const s = styles(io);
    const probed = statuses !== undefined;
    const rows: string[][] = [[
      "ID",
      ...(probed ? ["STATE", "QUEUE", "VRAM FREE/TOTAL", "VERSION", "NODES", "MODELS"] : []),
      "ADDRESS",
      "WEIGHT",
      "TAGS",
    ]];
    for (const b of backends) {
      const st = statusOf(b.id);
      const up = st?.state === "up";
      const known = up && st.capabilitiesAt !== undefined;
      const modelCount = known
        ? String(Object.values(st.models).reduce((n, l) => n + l.length, 0))
        : "-";
      rows.push([
        b.id,
        ...(probed
          ? [
            up ? s.green("up") : st?.state === "down" ? s.red("down") : s.yellow("unknown"),
            up ? `${st.queueRemaining}/${b.max_queue}` : "-",
            up && st.vram ? `${gib(st.vram.free)}/${gib(st.vram.total)} GiB` : "-",
            up ? st.comfyuiVersion ?? "?" : "-",
            known ? String(st.nodeClasses.length) : "-",
            modelCount,
          ]
          : []),
        `${b.tls ? "https://" : ""}${b.host}:${b.port}`,
        String(b.weight),
        b.tags.join(",") || "-",
      ]);
    }
    // deno-lint-ignore no-control-regex
    const visible = (t: string) => t.replace(/\x1b\[[0-9;]*m/g, "").length;
    io.out(table(rows, visible));
    if (!probed) return 0;
    for (const b of backends) {
      const st = statusOf(b.id);
      if (st?.state !== "up") {
        io.out(`\n${s.bold(b.id)}: ${st?.lastError ?? "no answer"}\n`);
        continue;
      }
      const inputs = Object.entries(st.models).filter(([, names]) => names.length > 0);
      if (inputs.length === 0) continue;
      io.out(`\n${s.bold(b.id)} models:\n`);
      for (const [input, names] of inputs) {
        const shown = names.slice(0, MODELS_SHOWN).join(", ");
        const more = names.length > MODELS_SHOWN
          ? s.dim(` (+${names.length - MODELS_SHOWN} more)`)
          : "";
        io.out(`  ${input}: ${shown}${more}\n`);
      }
    }
    return 0;
  },
};
