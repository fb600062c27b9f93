/**
 * `gov submit`: queue a workflow through the running gateway, or run it in-process against
 * the workspace's backends when no gateway is reachable.
 *
 * @module
 */
import { GovError } from "../../errors.ts";
import { parseSet } from "../../workflow/patch.ts";
import { findWorkspaceRoot, resolveWorkspace, type Workspace } from "../../workspace/root.ts";
import { checkSelection } from "../inputs.ts";
import type { Refusal } from "../../backends/types.ts";
import type { JobStreamEvent, JobView } from "../../serve/client.ts";
import { JobInputError } from "../../serve/dispatcher.ts";
import { findGateway, submitLocally, submitToGateway } from "../../serve/submit.ts";
import { type Command, numberFlag, parseFlags, positionalArgs, printJson } from "../command.ts";
import { readWorkflowFile } from "../workflow/shared.ts";
import { type Io, styles } from "../io.ts";
import { resolveToken } from "./token.ts";

const NAME = "submit";

/**
 * One human line for a job event (what `--wait` prints on stderr).
 *
 * @example
 * ```ts
 * import { eventLine } from "@/cli/serve/submit.ts";
 *
 * eventLine({ type: "dispatched", data: { backend: "gpu1", attempt: 1 } }); // "dispatched to gpu1 (attempt 1)"
 * ```
 */
export function eventLine(e: JobStreamEvent): string | undefined {
  const d = e.data;
  switch (e.type) {
    case "queued":
      return d.backend ? `queued for backend ${d.backend}` : "queued";
    case "waiting": {
      // One line per backend: which is down, which lacks a node or model, which is full.
      const refusals = Array.isArray(d.refusals) ? d.refusals as Refusal[] : [];
      if (!refusals.length) return String(d.reason ?? "waiting for a backend");
      return ["waiting for a backend:", ...refusals.map((r) => `    ${r.backend}: ${r.reason}`)]
        .join("\n");
    }
    case "dispatched":
      return `dispatched to ${d.backend} (attempt ${d.attempt})`;
    case "accepted":
      return `accepted by ${d.backend} as prompt ${d.prompt_id}`;
    case "running":
      return `running on ${d.backend}`;
    case "progress": {
      const pct = Number(d.max) > 0
        ? ` ${Math.floor((Number(d.value) / Number(d.max)) * 100)}%`
        : "";
      return `progress ${d.value}/${d.max}${pct}${nodeLabel(d)}`;
    }
    case "executed":
      return `done${nodeLabel(d) || ` node ${d.node}`}`;
    case "retry":
      return `${d.reason}; trying again`;
    case "completed":
      return `completed on ${d.backend}${
        typeof d.seconds === "number" ? ` in ${d.seconds} s` : ""
      }: ${d.outputs} output(s)`;
    case "failed":
      return `failed: ${d.error}`;
    case "cancelled":
      return "cancelled";
    case "disconnected":
      return "lost the connection to gov serve (restarting?); the job goes on there, " +
        "reconnecting...";
    default:
      return undefined;
  }
}

/** " KSampler (node 3)" from an event's node, class and title; "" without a node. */
function nodeLabel(d: Record<string, unknown>): string {
  if (d.node === null || d.node === undefined) return "";
  const name = typeof d.title === "string" ? d.title : d.class_type;
  return typeof name === "string" ? ` ${name} (node ${d.node})` : ` (node ${d.node})`;
}

/**
 * Whether `--wait` prints a progress event: the first and last step of each node, and at
 * most one line a second in between (a 1000-step video would otherwise flood the log).
 */
function progressFilter(): (e: JobStreamEvent) => boolean {
  let node: unknown;
  let at = 0;
  return (e) => {
    if (e.type !== "progress") return true;
    const now = Date.now();
    const edge = e.data.node !== node || e.data.value === e.data.max;
    if (!edge && now - at < 1000) return false;
    node = e.data.node;
    at = now;
    return true;
  };
}

/**
 * Whether `gov submit` prints event `e` on stderr: with `--wait` every one `show` lets
 * through; without, an in-process run still says why it has not returned yet (every backend
 * down or full), as silence reads as a hang.
 *
 * @example
 * ```ts
 * import { eventShown } from "@/cli/serve/submit.ts";
 *
 * eventShown({ type: "waiting", data: { reason: "gpu1: down" } }, false, () => true); // true
 * ```
 */
export function eventShown(
  e: JobStreamEvent,
  wait: boolean,
  show: (e: JobStreamEvent) => boolean,
): boolean {
  return wait ? show(e) : e.type === "waiting";
}

function printRefusals(io: Io, err: JobInputError): void {
  for (const r of err.refusals ?? []) io.err(`  ${r.backend}: ${r.reason}\n`);
}

/** The `gov submit` command. */
export const submitCommand: Command = {
  name: NAME,
  summary: "queue a workflow on the gateway (or run it in-process against the backends)",
  help: `Usage: gov submit <workflow.json> [--set KEY=VALUE]... [flags]

Queues a ComfyUI workflow (UI format or API prompt) with parameter changes. When a
\`gov serve\` for this workspace is reachable (--server, the address recorded in
<workspace>/.metadata/serve/server.json, or 127.0.0.1:8190), the job goes through its API
and survives this command; otherwise gov runs it in this process against the backends of
<workspace>/backends.toml, with the same placement rules, and returns once a backend
accepted the prompt (or, with --wait, once it finished).

Flags:
      --set KEY=VALUE   change a parameter: <node id>.<input>, <node title>.<input> or a
                        unique input name (seed, steps, cfg...); --set seed=random;
                        repeatable. Checked against the node definitions (range, choices).
      --backend ID      run on this backend only
      --queue-timeout S fail the job when no backend took it within S seconds (every
                        backend down, missing a node or model, or full); 0 = wait as
                        long as it takes. Default: the gateway's --queue-timeout (none)
      --wait            follow the job to its end: why it waits, where it runs, progress
                        per node on stderr; output URLs on stdout
      --json            print the job as JSON on stdout (nothing else there)
      --server URL      the gateway to use (default: this workspace's, if running)
      --token-file FILE the gateway's bearer token, read from FILE (or set
                        GOV_SERVE_TOKEN)
      --token T         the same, but T shows in process listings (ps): prefer the two
                        above (gov warns)
      --local           run in-process even when a gateway is reachable
      --workspace DIR   the workspace (default: discovered)

Exit codes: 0 submitted (or, with --wait, completed), 1 the job failed or was cancelled, or
the gateway/backends could not be reached, 2 bad input (unreadable workflow, unknown
parameter, out-of-range value, a prompt no backend can run), 130 interrupted.
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      set: { type: "string", multiple: true },
      backend: { type: "string" },
      "queue-timeout": { type: "string" },
      wait: { type: "boolean" },
      json: { type: "boolean" },
      server: { type: "string" },
      token: { type: "string" },
      "token-file": { type: "string" },
      local: { type: "boolean" },
      workspace: { type: "string" },
    });
    const [file] = positionalArgs(NAME, positionals, ["<workflow.json>"]);
    const s = styles(io);
    const sets = (values.set ?? []).map(parseSet);
    const workflow = await readWorkflowFile(io, file);
    const token = await resolveToken(NAME, values, io);
    const ctx = { cwd: io.cwd(), env: io.env };
    let ws: Workspace | undefined;
    checkSelection(values, io);
    if (values.workspace !== undefined || findWorkspaceRoot(ctx)) {
      ws = resolveWorkspace(values.workspace, ctx);
    }
    const queueTimeout = values["queue-timeout"] === undefined
      ? undefined
      : numberFlag(NAME, "--queue-timeout", values["queue-timeout"], 0, { min: 0 });
    const req = {
      workflow,
      sets,
      backend: values.backend,
      ...(queueTimeout !== undefined ? { queueTimeoutMs: queueTimeout * 1000 } : {}),
    };
    const wait = values.wait ?? false;
    const show = progressFilter();
    const onEvent = (e: JobStreamEvent) => {
      const line = eventLine(e);
      // A failure's reason comes once, in the closing error line (unless --json).
      if (e.type === "failed" && !values.json) return;
      if (line && eventShown(e, wait, show)) io.err(`${s.dim(String(e.data.job ?? ""))} ${line}\n`);
    };

    const interrupt = new AbortController();
    const onSig = () => interrupt.abort();
    Deno.addSignalListener("SIGINT", onSig);
    let job: JobView;
    let mode: "server" | "local";
    let server: string | undefined;
    try {
      const gw = values.local ? undefined : await findGateway({
        workspace: ws,
        server: values.server,
        token,
      });
      if (!gw && !ws) {
        throw new GovError("no gov serve is reachable and no workspace was found", {
          hint: "start `gov serve`, pass --server URL, or run inside a workspace (--workspace)",
        });
      }
      const out = gw
        ? await submitToGateway(gw, req, { wait, onEvent, signal: interrupt.signal })
        : await submitLocally(ws!, req, { wait, onEvent, signal: interrupt.signal });
      job = out.job;
      mode = out.mode;
      server = out.server;
    } catch (err) {
      if (err instanceof JobInputError) {
        io.err(`${s.red("error:")} ${err.message}\n`);
        if (err.refusals?.length) printRefusals(io, err);
        else if (err.hint) io.err(`  ${err.hint}\n`);
        return err.exitCode;
      }
      if (interrupt.signal.aborted) {
        io.err("interrupted: stopped waiting; the job goes on in gov serve\n");
        return 130;
      }
      throw err;
    } finally {
      Deno.removeSignalListener("SIGINT", onSig);
    }

    if (values.json) {
      printJson(io, { ...job, mode, ...(server ? { server } : {}) });
    } else if (!wait) {
      const where = mode === "server"
        ? `gov serve at ${server}`
        : job.backend
        ? `backend ${job.backend} (prompt ${job.prompt_id}; no gov serve running, so gov will not retry it)`
        // Failed before any backend took it (a queue timeout): there is no backend to name.
        : "no backend took it (no gov serve running)";
      io.out(`job ${job.id} ${job.state}: ${where}\n`);
    } else {
      for (const o of job.outputs) io.out(`${o.url}\n`);
    }
    if (interrupt.signal.aborted && job.state === "cancelled") return 130;
    if (wait && job.state !== "completed") {
      if (!values.json) {
        io.err(
          `${s.red("error:")} job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ""}\n`,
        );
      }
      return 1;
    }
    if (!wait && job.state === "failed") {
      if (!values.json) io.err(`${s.red("error:")} job ${job.id} failed: ${job.error}\n`);
      return 1;
    }
    return 0;
  },
};
