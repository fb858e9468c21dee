/**
 * Kill and resume, as a user would hit it: `kill -9` mid-finetune, then run the spec again.
 * The rerun resumes from the last checkpoint and ends with the same metrics as a run that
 * was never interrupted (same backend, same seed).
 */
import assert from "node:assert/strict";
import { ROOT, tempRun, tinySpec } from "./cli.ts";

const MAIN = `${ROOT}pipeline/commands/experiment.ts`;

/** The tiny spec of ./cli.ts with one arm fine-tuned long enough to be killed mid-way. */
const SPEC = tinySpec("resume-tiny", { klal: "{ lambda: 1.0 }" }, {
  backend: "wasm",
  base: "{ steps: 2, batch_size: 8, train: 16 }",
  train: "{ steps: 300, batch_size: 8, warmup: 1, log_every: 50, checkpoint_every: 20 }",
  eval: "{ batch_size: 16 }",
});

async function setup(name: string) {
  const { dir, env } = await tempRun(`resume-${name}`, SPEC);
  return { dir, env: { ...env, KLAL_PLAIN_PROGRESS: "1" } };
}

function command(dir: string, env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, `${dir}/spec.yaml`, "--jobs", "1"],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

async function rows(dir: string) {
  const r = JSON.parse(await Deno.readTextFile(`${dir}/reports/resume-tiny/results.json`));
  return r.rows;
}

function checkpoints(dir: string): string[] {
  try {
    return [...Deno.readDirSync(`${dir}/cache/partial`)].map((e) => e.name).filter((n) =>
      n.endsWith(".ckpt")
    );
  } catch {
    return [];
  }
}

/** The results of the spec run once without interruption (computed on first use). */
let reference: Promise<unknown> | undefined;
function uninterrupted(): Promise<unknown> {
  return reference ??= (async () => {
    const whole = await setup("whole");
    const run = await command(whole.dir, whole.env).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    assert.deepEqual(checkpoints(whole.dir), [], "a finished stage leaves no checkpoint");
    const result = await rows(whole.dir);
    await Deno.remove(whole.dir, { recursive: true });
    return result;
  })();
}

/** A run of the spec killed (runner and worker, SIGKILL) once two checkpoints exist. */
async function killedRun(name: string) {
  const cut = await setup(name);
  const child = command(cut.dir, cut.env).spawn();
  const deadline = Date.now() + 60_000;
  while (!checkpoints(cut.dir).some((n) => n.endsWith(".prev.ckpt")) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(checkpoints(cut.dir).length > 0, "no checkpoint appeared");
  // Kill the runner and its worker at once (both have the temp dir in their arguments).
  await new Deno.Command("pkill", { args: ["-9", "-f", cut.dir] }).output();
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  return cut;
}

Deno.test("kill -9 mid-finetune, rerun: resumes from the checkpoint and ends identical", async () => {
  const expected = await uninterrupted();
  const cut = await killedRun("cut");
  const again = await command(cut.dir, cut.env).output();
  const stderr = new TextDecoder().decode(again.stderr);
  assert.equal(again.code, 0, stderr);
  assert.match(stderr, /finetune:klal:s0: resuming from step \d+/);
  assert.deepEqual(await rows(cut.dir), expected);
  assert.deepEqual(checkpoints(cut.dir), []);
  await Deno.remove(cut.dir, { recursive: true });
});

Deno.test("a damaged checkpoint is discarded: the rerun goes on from the previous one, identical", async () => {
  const expected = await uninterrupted();
  const cut = await killedRun("damaged");
  // The kill may fall between the rename of the newest to the previous and the next write:
  // then the only checkpoint left is the one damaged, and training restarts from step 0.
  const names = checkpoints(cut.dir);
  const newest = names.find((n) => !n.includes(".prev."));
  const path = `${cut.dir}/cache/partial/${newest ?? names[0]}`;
  const bytes = await Deno.readFile(path);
  for (let i = bytes.length - 64; i < bytes.length - 48; i++) bytes[i] ^= 0xff; // 16 bytes
  await Deno.writeFile(path, bytes);

  const again = await command(cut.dir, cut.env).output();
  const stderr = new TextDecoder().decode(again.stderr);
  assert.equal(again.code, 0, stderr);
  assert.match(
    stderr,
    /finetune:klal:s0: discarding the damaged checkpoint .*\.ckpt \(its sha256 does not match its content\)/,
  );
  if (newest) {
    assert.match(stderr, /finetune:klal:s0: using the previous checkpoint .*\.prev\.ckpt/);
    assert.match(stderr, /finetune:klal:s0: resuming from step \d+/);
  } else assert.match(stderr, /no sound checkpoint left: training restarts from step 0/);
  assert.deepEqual(await rows(cut.dir), expected);
  assert.deepEqual(checkpoints(cut.dir), []);
  await Deno.remove(cut.dir, { recursive: true });
});
