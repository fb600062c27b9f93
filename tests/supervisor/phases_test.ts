// The supervisor's tables (phases.ts) checked as data: the rules a reader relies on when
// comparing them with the contract, and the port-holder lookup through /proc.
import { assertEquals, assertThrows, assertTrue } from "../helpers/assert.ts";
import {
  exitAction,
  LOOP,
  type LoopStep,
  PHASES,
  type SupervisorPhase,
  SWITCH_STATES,
  transition,
  TransitionError,
} from "../../src/supervisor/phases.ts";
import { procListenerPids } from "../../src/supervisor/procinfo.ts";
import { PYTHON } from "./_helpers.ts";

function reachable<S extends string>(next: (s: S) => readonly S[], from: S): Set<S> {
  const seen = new Set<S>([from]);
  const todo = [from];
  while (todo.length) {
    for (const n of next(todo.pop()!)) if (!seen.has(n)) todo.push(n), seen.add(n);
  }
  return seen;
}

Deno.test("only the restart gate and the crash policy lead the loop back to start", () => {
  const into = (Object.keys(LOOP) as LoopStep[]).filter((s) => LOOP[s].next.includes("start"));
  assertEquals(into.sort(), ["begin", "crash", "restart"]);
  // And the gate itself can only start again or turn into a crash.
  assertEquals([...LOOP.restart.next].sort(), ["crash", "start"]);
});

Deno.test("every loop step and phase is reachable and can reach the end", () => {
  const steps = Object.keys(LOOP) as LoopStep[];
  assertEquals(reachable((s: LoopStep) => LOOP[s].next, "begin").size, steps.length);
  for (const s of steps) assertTrue(reachable((x: LoopStep) => LOOP[x].next, s).has("end"), s);
  const phases = Object.keys(PHASES) as SupervisorPhase[];
  assertEquals(reachable((p: SupervisorPhase) => PHASES[p], "starting").size, phases.length);
  for (const p of phases) {
    assertTrue(reachable((x: SupervisorPhase) => PHASES[x], p).has("stopped"));
  }
});

Deno.test("a switch ends complete, failed or aborted, and only rollback follows a failure", () => {
  const terminal = ["aborted", "complete", "failed"];
  for (const [state, next] of Object.entries(SWITCH_STATES)) {
    if (next.length === 0) assertTrue(terminal.includes(state), state);
    else {
      assertTrue(
        reachable((s: keyof typeof SWITCH_STATES) => SWITCH_STATES[s], state as "idle")
          .has("failed"),
      );
    }
  }
  assertEquals([...SWITCH_STATES.rolling_back], ["failed", "aborted"]);
  assertTrue(!SWITCH_STATES.rolling_back.includes("complete"), "a rollback is never complete");
});

Deno.test("transition returns an allowed move and refuses any other", () => {
  assertEquals(transition("phase", PHASES, "syncing", "waiting_health"), "waiting_health");
  assertEquals(transition("phase", PHASES, "running", "running"), "running");
  assertThrows(() => transition("phase", PHASES, "stopped", "running"), TransitionError);
  assertThrows(() => transition("loop", LOOP, "supervise", "start"), TransitionError);
});

Deno.test("exit codes map to stop, restart, switch and crash as ComfyGit defines them", () => {
  assertEquals(exitAction(0, false).action, "stop");
  assertEquals(exitAction(0, true), { meaning: "ComfyUI-Manager restart", action: "restart" });
  assertEquals(exitAction(42, true).action, "restart");
  assertEquals(exitAction(43, false).action, "switch");
  for (const code of [1, 2, 137, -1]) assertEquals(exitAction(code, false).action, "crash");
});

Deno.test("the holder of a listening port is found through /proc where ss is missing", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    assertEquals(await procListenerPids(port, PYTHON), [Deno.pid]);
  } finally {
    listener.close();
  }
  assertEquals(await procListenerPids(port, PYTHON), undefined);
});
