/**
 * The native kernels run 20 times in fresh processes (tests/native_stress_child.ts): each
 * must exit 0 with no abort text on stderr. Corruption of the native heap (a write through
 * a stale pointer into wasm memory) tends to pass the numbers and abort at exit
 * ("corrupted size vs. prev_size", "double free"), and only in some runs.
 */
import assert from "node:assert/strict";
import { pathOf } from "../pipeline/lib/paths.ts";

const RUNS = 20;
const CHILD = pathOf(new URL("./native_stress_child.ts", import.meta.url));
/** What glibc, V8 and Deno print when a process dies of a corrupted heap or a bad pointer. */
const ABORT_TEXT =
  /corrupted|double free|free\(\)|malloc\(\)|malloc_consolidate|munmap_chunk|Aborted|abort|Segmentation fault|SIGSEGV|SIGABRT|core dumped|panicked|Fatal error|fatal/i;

Deno.test(`native kernels: ${RUNS} child processes in a row exit 0 without abort text`, async () => {
  const failures: string[] = [];
  for (let run = 0; run < RUNS; run++) {
    const { code, signal, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      // Each run grows the heap inside a different group of kernel cases (all in turn).
      args: ["run", "-A", "--quiet", CHILD, "--group", String(run)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    if (code !== 0 || signal !== null || ABORT_TEXT.test(err) || !/native stress: ok/.test(out)) {
      failures.push(`run ${run}: exit ${code}${signal ? ` (${signal})` : ""}\n${out}${err}`);
    }
  }
  assert.deepEqual(failures, [], failures.join("\n---\n"));
});
