/**
 * The gov panel: a tiny ComfyUI custom node that gives ComfyUI's UI (and any HTTP client)
 * `POST /gov/restart`, `POST /gov/switch {"env"}` and `GET /gov/status`, speaking to the
 * supervisor through the same `.metadata/` files and exit codes as ComfyGit's panel.
 *
 * @module
 */
import { join } from "node:path";
import { readTextIfExists, writeFileAtomic } from "../fs/atomic.ts";
import { GovError } from "../errors.ts";
import type { Environment } from "../workspace/environment.ts";

/** Version of the panel source; bumped when the Python changes. */
export const PANEL_VERSION = "1";

/** Folder name of the panel under `custom_nodes/`. */
export const PANEL_DIR_NAME = "gov_panel";

/** The panel's `__init__.py`. Standard library only; aiohttp is imported only inside ComfyUI. */
export const PANEL_SOURCE =
  `"""gov panel: restart ComfyUI or switch environments through the gov supervisor.

Installed by \`gov panel install\` (version ${PANEL_VERSION}); reinstall to update, do not edit.
Routes (also under /api/ in ComfyUI):
  POST /gov/restart             answer 202, then exit 42: gov resyncs and starts ComfyUI again
  POST /gov/switch {"env": N}   write .metadata/.switch_request.json, answer 202, then exit 43
  GET  /gov/status              the supervisor's state files
Restart and switch need ComfyUI to run under \`gov run\` (COMFYGIT_SUPERVISED=1): without a
supervisor nobody would start ComfyUI again, so they answer 409 instead.
"""
import json
import os
import re
import sys
import threading
import time

GOV_PANEL_VERSION = "${PANEL_VERSION}"
NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

EXIT_RESTART = 42
EXIT_SWITCH_ENV = 43
EXIT_DELAY = 0.5
LOCK_TIMEOUT = 300
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_IDLE = {"state": "idle", "progress": 0, "message": "", "updated_at": 0}


def workspace_root():
    """The gov workspace: GOV_WORKSPACE, COMFYGIT_HOME, else the nearest folder with .metadata/."""
    for var in ("GOV_WORKSPACE", "COMFYGIT_HOME"):
        value = os.environ.get(var)
        if value and os.path.isdir(value):
            return os.path.abspath(value)
    here = os.path.abspath(os.getcwd())
    while True:
        if os.path.isdir(os.path.join(here, ".metadata")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def supervised():
    return os.environ.get("COMFYGIT_SUPERVISED") == "1"


def _read_json(path):
    try:
        with open(path) as f:
            value = json.load(f)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def _write_json_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, TypeError, OverflowError):
        return False


def _read_pid(meta):
    try:
        with open(os.path.join(meta, ".orchestrator.pid")) as f:
            text = f.read().strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _lock_held(meta):
    path = os.path.join(meta, ".switch.lock")
    try:
        st = os.stat(path)
    except OSError:
        return False
    info = _read_json(path) or {}
    pid = info.get("pid")
    if isinstance(pid, int) and not _pid_alive(pid):
        return False
    return time.time() - st.st_mtime <= LOCK_TIMEOUT


def _exit_later(code, delay=EXIT_DELAY):
    """Exits after the HTTP answer went out; the supervisor reads the code."""
    def later():
        time.sleep(delay)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

    threading.Thread(target=later, name="gov-panel-exit", daemon=True).start()


def status(ws=None):
    ws = ws or workspace_root()
    out = {
        "panel_version": GOV_PANEL_VERSION,
        "supervised": supervised(),
        "environment": os.environ.get("GOV_ENVIRONMENT"),
        "workspace": ws,
        "switch": dict(_IDLE),
    }
    if ws is None:
        return out
    meta = os.path.join(ws, ".metadata")
    pid = _read_pid(meta)
    out["supervisor_pid"] = pid
    out["supervisor_running"] = bool(pid and _pid_alive(pid))
    out["switch"] = _read_json(os.path.join(meta, ".switch_status.json")) or dict(_IDLE)
    out["supervisor"] = _read_json(os.path.join(meta, ".supervisor_state.json"))
    out["startup"] = _read_json(os.path.join(meta, ".startup_state.json"))
    envs_dir = os.path.join(ws, "environments")
    try:
        out["environments"] = sorted(
            e for e in os.listdir(envs_dir)
            if _NAME.match(e) and os.path.isdir(os.path.join(envs_dir, e)))
    except OSError:
        out["environments"] = []
    return out


def _not_supervised():
    return 409, {"error": "ComfyUI is not running under \`gov run\`; nothing would start it again",
                 "hint": "start ComfyUI with \`gov run\`, or use \`gov switch\` from a shell"}


def request_restart():
    if not supervised():
        return _not_supervised()
    _exit_later(EXIT_RESTART)
    return 202, {"restarting": True}


def request_switch(env, ws=None):
    if not supervised():
        return _not_supervised()
    if not isinstance(env, str) or not _NAME.match(env) or ".." in env:
        return 400, {"error": "body must be {\\"env\\": \\"<environment name>\\"}"}
    ws = ws or workspace_root()
    if ws is None:
        return 500, {"error": "cannot find the gov workspace (set GOV_WORKSPACE)"}
    meta = os.path.join(ws, ".metadata")
    if not os.path.isdir(os.path.join(ws, "environments", env)):
        return 404, {"error": "environment '%s' not found" % env,
                     "environments": status(ws).get("environments", [])}
    current = os.environ.get("GOV_ENVIRONMENT")
    if env == current:
        return 200, {"already": True, "environment": env}
    if _lock_held(meta) or _read_json(os.path.join(meta, ".switch_request.json")):
        return 409, {"error": "a switch is already in progress"}
    request = {"target_env": env, "timestamp": time.time(), "requested_by": "gov panel"}
    if current:
        request["source_env"] = current
    os.makedirs(meta, exist_ok=True)
    _write_json_atomic(os.path.join(meta, ".switch_request.json"), request)
    _exit_later(EXIT_SWITCH_ENV)
    return 202, {"switching_to": env, "source_env": current}


def _register(prompt_server):
    from aiohttp import web

    routes = prompt_server.instance.routes

    @routes.post("/gov/restart")
    async def gov_restart(request):
        code, body = request_restart()
        return web.json_response(body, status=code)

    @routes.post("/gov/switch")
    async def gov_switch(request):
        try:
            body = await request.json()
        except Exception:
            body = None
        env = body.get("env") if isinstance(body, dict) else None
        code, payload = request_switch(env)
        return web.json_response(payload, status=code)

    @routes.get("/gov/status")
    async def gov_status(request):
        return web.json_response(status())


try:
    from server import PromptServer
except Exception:
    PromptServer = None

if PromptServer is not None and getattr(PromptServer, "instance", None) is not None:
    try:
        _register(PromptServer)
    except Exception as e:
        print("[gov panel] routes not registered: %s" % e, file=sys.stderr)
`;

/** What {@linkcode installPanel} did. */
export interface PanelInstall {
  path: string;
  /** False when the same version was already there. */
  changed: boolean;
}

/**
 * Writes the panel into `<comfyui>/custom_nodes/gov_panel/__init__.py` (atomically; a
 * rerun updates it). ComfyUI loads it at its next start.
 *
 * @example
 * ```ts
 * import { workspaceAt } from "../workspace/root.ts";
 * const ws = workspaceAt("/srv/comfy");
 * import { workspaceEnvironment } from "../workspace/environment.ts";
 * const { path } = await installPanel(workspaceEnvironment(ws, "prod"));
 * ```
 */
export async function installPanel(env: Environment): Promise<PanelInstall> {
  const customNodes = join(env.comfyuiDir, "custom_nodes");
  try {
    const st = await Deno.stat(env.comfyuiDir);
    if (!st.isDirectory) throw new Deno.errors.NotFound();
  } catch {
    const err = new GovError(`no ComfyUI folder at ${env.comfyuiDir}`, {
      hint: `set [paths] comfyui_dir in ${env.configPath}`,
    });
    err.exitCode = 2;
    throw err;
  }
  const path = join(customNodes, PANEL_DIR_NAME, "__init__.py");
  if ((await readTextIfExists(path)) === PANEL_SOURCE) return { path, changed: false };
  await writeFileAtomic(path, PANEL_SOURCE);
  return { path, changed: true };
}
