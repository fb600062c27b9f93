/**
 * `gov panel install`: put the gov panel custom node into an environment's ComfyUI.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import type { Io } from "../io.ts";
import { installPanel, PANEL_VERSION } from "../../supervisor/panel.ts";
import { selectEnvironment } from "../../workspace/environment.ts";
import { checkSelection } from "../inputs.ts";
import { WORKSPACE_FLAG } from "./common.ts";

const HELP = `Usage: gov panel install [--workspace DIR] [--env NAME | --env-dir DIR] [--json]

Writes a small ComfyUI custom node to <ComfyUI>/custom_nodes/gov_panel/__init__.py that
adds these routes to ComfyUI (also under /api/):
  POST /gov/restart            ComfyUI exits 42: gov resyncs and restarts it
  POST /gov/switch {"env": N}  writes .metadata/.switch_request.json, ComfyUI exits 43
  GET  /gov/status             the supervisor's state files as JSON
Restart and switch answer 409 when ComfyUI does not run under \`gov run\`. Rerunning
updates the file. ComfyUI loads it at its next start (\`gov restart\`).

Flags:
  -w, --workspace DIR   workspace root (default: COMFYGIT_HOME or discovery from cwd)
  -e, --env NAME        environment of the workspace (default: the one holding the cwd)
      --env-dir DIR     a standalone environment folder
      --json            print {"path", "changed", "version"} as JSON
`;

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("panel install", args, {
    ...WORKSPACE_FLAG,
    env: { type: "string" },
    "env-dir": { type: "string" },
    json: { type: "boolean" },
  });
  positionalArgs("panel install", positionals, []);
  checkSelection(values, io);
  const env = selectEnvironment({
    workspace: values.workspace,
    env: values.env,
    envDir: values["env-dir"],
    cwd: io.cwd(),
    getenv: io.env,
  });
  const r = await installPanel(env);
  if (values.json) {
    printJson(io, {
      environment: env.name,
      path: r.path,
      changed: r.changed,
      version: PANEL_VERSION,
    });
  } else {
    io.out(`${r.path}\n`);
    io.err(
      r.changed
        ? `gov panel ${PANEL_VERSION} installed in ${env.name}; restart ComfyUI to load it (gov restart)\n`
        : `gov panel ${PANEL_VERSION} already installed in ${env.name}\n`,
    );
  }
  return 0;
}

/** `gov panel install`. */
export const panelInstallCommand: Command = {
  name: "panel install",
  summary: "install the gov panel node (restart/switch/status routes) into ComfyUI",
  help: HELP,
  run,
};
