import { assertEquals, assertMatch } from "./helpers/assert.ts";
import { gov } from "./helpers/gov.ts";
import { VERSION } from "../src/version.ts";

Deno.test("gov --version prints the version and exits 0", async () => {
  const r = await gov(["--version"]);
  assertEquals(r.code, 0);
  assertEquals(r.stdout.trim(), `gov ${VERSION}`);
});

Deno.test("gov --help lists commands and exits 0", async () => {
  const r = await gov(["--help"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /Usage: gov <command>/);
});

Deno.test("an unknown command is a usage error with exit 2 and a hint", async () => {
  const r = await gov(["frobnicate"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /unknown command 'frobnicate'/);
  assertMatch(r.stderr, /gov --help/);
  assertEquals(r.stdout, "");
});
