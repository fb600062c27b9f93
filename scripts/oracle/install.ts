/**
 * Installs the pinned real programs the oracle needs into the git-ignored `.tools/` folder:
 * the ComfyUI frontend's built files and the workflow templates, both from PyPI (`pip
 * download --no-deps`, then unzip). An install is reused when its folder exists.
 *
 * @module
 */

/** The frontend wheel: its `comfyui_frontend_package/static` is the web root. */
export const FRONTEND = { name: "comfyui-frontend-package", version: "1.58.1" };
/** The templates' JSON-only wheel (the meta package pulls media packages we do not need). */
export const TEMPLATES = { name: "comfyui-workflow-templates-json", version: "0.1.123" };

async function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${out.code}):\n${err}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Downloads and unpacks one pinned wheel under `toolsDir`; returns the unpacked folder. */
export async function installWheel(
  toolsDir: string,
  pkg: { name: string; version: string },
): Promise<string> {
  const dir = `${toolsDir}/${pkg.name}-${pkg.version}`;
  if (await exists(`${dir}/.complete`)) return dir;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const dl = `${dir}.download`;
  await Deno.remove(dl, { recursive: true }).catch(() => {});
  await Deno.mkdir(dl, { recursive: true });
  await run("python3", [
    "-m",
    "pip",
    "download",
    "--quiet",
    "--no-deps",
    "--only-binary=:all:",
    "--dest",
    dl,
    `${pkg.name}==${pkg.version}`,
  ]);
  const wheels = [...Deno.readDirSync(dl)].filter((e) => e.name.endsWith(".whl"));
  if (wheels.length !== 1) throw new Error(`${pkg.name}: expected one wheel in ${dl}`);
  await Deno.mkdir(dir, { recursive: true });
  // A wheel is a zip; python's zipfile avoids depending on an unzip binary.
  await run("python3", ["-m", "zipfile", "-e", `${dl}/${wheels[0].name}`, dir]);
  await Deno.writeTextFile(`${dir}/.complete`, `${pkg.name}==${pkg.version}\n`);
  await Deno.remove(dl, { recursive: true });
  return dir;
}
