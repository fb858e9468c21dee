/**
 * Least privilege: a stage runs without network or subprocess permissions (the flags every
 * executor starts workers with), and the deno tasks name their permissions instead of -A.
 */
import assert from "node:assert/strict";
import { STAGE_PERMISSIONS, WORKER_PATH, workerArgs } from "../pipeline/run/executors/executor.ts";
import { SlurmExecutor } from "../pipeline/run/executors/slurm.ts";
import type { ResolvedStage } from "../pipeline/run/plan.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("permissions: workers start with the stage permissions, never the network", () => {
  const args = workerArgs("/tmp/d.json");
  assert.deepEqual(args, ["run", ...STAGE_PERMISSIONS, "--quiet", WORKER_PATH, "/tmp/d.json"]);
  for (const flag of ["-A", "--allow-all", "--allow-net", "--allow-run", "--allow-import"]) {
    assert.ok(!args.some((a) => a === flag || a.startsWith(`${flag}=`)), flag);
  }
  // A Slurm job runs the same command line.
  const sbatch = new SlurmExecutor().sbatchArgs({ id: "data:x" } as ResolvedStage, "/tmp/d.json");
  const wrap = sbatch.find((a) => a.startsWith("--wrap="))!;
  for (const flag of STAGE_PERMISSIONS) assert.ok(wrap.includes(flag), `${flag} in ${wrap}`);
  assert.ok(!/ -A | --allow-net/.test(wrap), wrap);
});

Deno.test("permissions: code run with the stage permissions cannot reach the network", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A stand-in for a stage that reaches out: it may write its output, then fetches.
    await Deno.writeTextFile(
      `${dir}/stage.ts`,
      [
        `await Deno.writeTextFile(${JSON.stringify(`${dir}/out.txt`)}, "written");`,
        'for (const reach of [() => fetch("https://huggingface.co/"), () => Deno.connect({ hostname: "127.0.0.1", port: 54321 }),',
        '  async () => await new Deno.Command("true").output()]) {',
        "  try { await reach(); console.log('reached'); }",
        "  catch (e) { console.log(`${(e as Error).name}: ${(e as Error).message.split('\\n')[0]}`); }",
        "}",
      ].join("\n"),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...STAGE_PERMISSIONS, "--quiet", `${dir}/stage.ts`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert.equal(await Deno.readTextFile(`${dir}/out.txt`), "written");
    assert.equal(lines.length, 3, lines.join(" | "));
    assert.match(lines[0], /^NotCapable: Requires net access to "huggingface\.co(:443)?"/);
    assert.match(
      lines[1],
      /^NotCapable: Requires net access to "127\.0\.0\.1:54321"/,
    );
    assert.match(lines[2], /^NotCapable: Requires run access to "true"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permissions: no deno task but the tests runs with -A or the network", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (const [name, command] of Object.entries(config.tasks as Record<string, string>)) {
    if (name === "test" || name === "check") continue;
    assert.ok(!/(^|\s)(-A|--allow-all|--allow-net)(\s|=|$)/.test(command), `${name}: ${command}`);
    assert.ok(/--allow-read/.test(command), `${name} reads files: ${command}`);
  }
});

Deno.test("permissions: every deno task answers --help and --version with its own permissions", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (const [name, command] of Object.entries(config.tasks as Record<string, string>)) {
    if (name === "test" || name === "check") continue;
    const [deno, ...args] = command.split(/\s+/);
    assert.equal(deno, "deno", command);
    for (const flag of ["--help", "--version"]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [...args, flag],
        cwd: new URL(".", ROOT).pathname,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      const err = new TextDecoder().decode(out.stderr).split("\n").slice(0, 3).join(" ");
      assert.ok(out.success, `${name} ${flag}: exit ${out.code}: ${err}`);
      if (flag === "--help") {
        assert.match(text, /^usage: deno task /, `${name} --help`);
        // Every option the usage lists has its line of description.
        for (const line of text.split("\n").filter((l) => /^\s+--?[a-z]/.test(l))) {
          assert.match(
            line,
            /^\s+\S.*\s{2,}\S/,
            `${name}: an option without a description: ${line}`,
          );
        }
      } else {assert.match(
          text,
          /^klal (commit [0-9a-f]{12}|not a git checkout)/,
          `${name} --version`,
        );}
    }
  }
});
