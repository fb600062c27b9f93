/**
 * `gov init`: creates or re-checks an environment's governance layout and production venv.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { initEnvironment } from "../../gov/mod.ts";
import { GovError, UsageError } from "../../errors.ts";
import { checkFileFlag, checkFolderFlag, checkSelection, workspaceFromFlag } from "../inputs.ts";
import { validRange } from "@renovatebot/pep440";
import { validateName } from "../../workspace/names.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov init`. */
export const initCommand: Command = {
  name: "init",
  summary: "initialise an environment: layout, uv lock, .venv-prod",
  help: `Usage: gov init [--requirements FILE] [--comfyui DIR] [--json]

Creates the environment layout (config.toml, pyproject.toml, state/, snapshots/), locks
with \`uv lock\` and builds .venv-prod with \`uv sync --locked --all-groups\`. Fails, reporting
no partial success, when uv is missing or locking/syncing fails. Safe to run again: on an
initialised environment it relocks (a no-op when nothing changed) and re-syncs .venv-prod
if it drifted.

The ComfyUI base requirements come from --requirements FILE, else ComfyUI's own
requirements.txt, else none. .venv-prod is created with \`uv venv --seed\` (pip, for
ComfyUI-Manager); packages installed behind gov's back are removed by the next sync.

Flags:
  --requirements FILE   requirements.txt with the ComfyUI base requirements
  --comfyui DIR         [paths] comfyui_dir for a new config.toml (default ComfyUI)
  --requires-python S   requires-python of a new pyproject.toml (default >=3.10)
  --json                print the result as JSON

${ENV_FLAGS_HELP}
  With no flag, the working folder is initialised. --env NAME creates the environment
  folder in the workspace; --env-dir DIR creates DIR.
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("init", args, {
      ...ENV_FLAGS,
      requirements: { type: "string" },
      comfyui: { type: "string" },
      "requires-python": { type: "string" },
      json: { type: "boolean" },
    });
    positionalArgs("init", positionals, []);
    checkSelection(values, io);
    checkFileFlag("--requirements", values.requirements, io);
    checkFolderFlag("--comfyui", values.comfyui, io);
    const requiresPython = values["requires-python"];
    if (requiresPython !== undefined && !validRange(requiresPython)) {
      throw new UsageError(
        `gov init: --requires-python '${requiresPython}' is not a version specifier`,
        { hint: "pass one such as >=3.10 or >=3.10,<3.13 (PEP 440)" },
      );
    }
    let dir: string;
    if (values["env-dir"] !== undefined) dir = resolve(io.cwd(), values["env-dir"]);
    else if (values.env !== undefined) {
      const ws = workspaceFromFlag(values.workspace, io);
      dir = join(ws.environmentsDir, validateName("environment name", values.env));
    } else {
      try {
        dir = envFromFlags(values, io).dir;
      } catch (err) {
        if (!(err instanceof GovError)) throw err;
        dir = resolve(io.cwd());
      }
    }
    const r = await initEnvironment(dir, {
      requirementsFile: values.requirements !== undefined
        ? resolve(io.cwd(), values.requirements)
        : undefined,
      comfyuiDir: values.comfyui,
      requiresPython: values["requires-python"],
    }, govOptions(io));
    if (values.json) {
      printJson(io, r);
      return 0;
    }
    const s = styles(io);
    for (const w of r.warnings) io.err(`${s.yellow("warning:")} ${w}\n`);
    io.out(
      `${s.green("✓")} environment ${r.env} ${
        r.already_initialised ? "already initialised" : "initialised"
      } at ${r.dir}\n`,
    );
    if (r.created.length) io.out(`  created: ${r.created.join(", ")}\n`);
    io.out(`  base requirements: ${r.base_requirements.join(", ") || "(none)"}\n`);
    io.out(`  .venv-prod: ${r.prod === "synced" ? "synced" : "already in sync"}\n`);
    if (r.snapshot) io.out(`  snapshot: ${r.snapshot}\n`);
    return 0;
  },
};
