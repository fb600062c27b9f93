/**
 * The two processes the oracle drives: the fake ComfyUI serving the real frontend, and one
 * headless Debian Chromium, both started with argument arrays and stopped by their pid.
 *
 * @module
 */
import { CdpPage } from "./cdp.ts";

/** A started child process and how to stop it. */
export interface Child {
  process: Deno.ChildProcess;
  stop(): Promise<void>;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function stopChild(p: Deno.ChildProcess): Promise<void> {
  try {
    p.kill("SIGTERM");
  } catch {
    // already gone
  }
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, 5000);
  await p.status;
  clearTimeout(timer);
}

async function waitHttp(url: string, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 300; i++) {
    if (exited) throw new Error(`${what} exited before answering ${url}`);
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer ${url} within 30 s`);
}

/** Starts fixtures/comfyui/main.py serving `webRoot` with exactly `objectInfo`'s classes. */
export async function startFakeComfy(
  repo: string,
  webRoot: string,
  objectInfo: string,
  workDir: string,
): Promise<Child & { url: string }> {
  const port = freePort();
  const process = new Deno.Command("python3", {
    args: [
      `${repo}/fixtures/comfyui/main.py`,
      "--listen",
      "127.0.0.1",
      "--port",
      String(port),
      "--disable-all-custom-nodes",
      "--front-end-root",
      webRoot,
      "--user-directory",
      `${workDir}/user`,
    ],
    cwd: workDir,
    env: { FAKE_COMFYUI_OBJECT_INFO: objectInfo },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/api/system_stats`, process, "the fake ComfyUI");
  return { process, url, stop: () => stopChild(process) };
}

/** Finds Debian's Chromium (never a downloaded browser). */
export function chromiumPath(): string {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // try the next
    }
  }
  throw new Error("chromium not found: install Debian's package (apt-get install -y chromium)");
}

/** Starts headless Chromium on `url` with a fresh profile and connects to its page. */
export async function startChromium(
  url: string,
  workDir: string,
): Promise<Child & { page: CdpPage }> {
  const port = freePort();
  const process = new Deno.Command(chromiumPath(), {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-dev-shm-usage",
      `--user-data-dir=${workDir}/chromium-profile`,
      `--remote-debugging-port=${port}`,
      "--remote-debugging-address=127.0.0.1",
      "--window-size=1600,1000",
      url,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/json/version`, process, "chromium");
  type Target = { type: string; url: string; webSocketDebuggerUrl: string };
  let target: Target | undefined;
  for (let i = 0; i < 100 && !target; i++) {
    const list = await (await fetch(`${base}/json/list`)).json() as Target[];
    target = list.find((t) => t.type === "page");
    if (!target) await new Promise((r) => setTimeout(r, 100));
  }
  if (!target) throw new Error("chromium opened no page");
  const page = await CdpPage.connect(target.webSocketDebuggerUrl);
  return {
    process,
    page,
    stop: async () => {
      page.close();
      await stopChild(process);
    },
  };
}
