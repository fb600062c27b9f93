/**
 * Runs a command with folder `<dir>` mounted read-only or on a full disk, in a private
 * mount namespace (started by the caller with `unshare --mount`), so tests can show what
 * gov says on EROFS and ENOSPC even as root, whom file modes do not stop:
 *
 *     unshare --mount --propagation private -- deno run -A mount_probe.ts ro|full <dir> -- cmd args...
 *
 * `full` puts a 1 MiB tmpfs over `<dir>` holding a copy of its files, then fills it.
 *
 * @module
 */
async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const [mode, dir, sep, cmd, ...args] = Deno.args;
if (!["ro", "full"].includes(mode) || !dir || sep !== "--" || !cmd) {
  console.error("usage: mount_probe.ts ro|full <dir> -- <cmd> [args...]");
  Deno.exit(2);
}
if (mode === "ro") {
  await run("mount", ["--bind", dir, dir]);
  await run("mount", ["-o", "remount,bind,ro", dir]);
} else {
  const keep = await Deno.makeTempDir({ prefix: "gov-probe-" });
  await run("cp", ["-a", `${dir}/.`, keep]);
  await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
  await run("cp", ["-a", `${keep}/.`, dir]);
  await Deno.remove(keep, { recursive: true });
  // Fill every block: writes stop with ENOSPC.
  const f = await Deno.open(`${dir}/.filler`, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  try {
    while (true) await f.write(chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  } finally {
    f.close();
  }
}
const child = await new Deno.Command(cmd, { args, stdin: "null" }).output();
await Deno.stdout.write(child.stdout);
await Deno.stderr.write(child.stderr);
Deno.exit(child.code);
