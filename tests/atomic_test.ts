import assert from "node:assert/strict";
import {
  parentOf,
  publishFolderOnce,
  replaceFolderAtomic,
  temporarySibling,
  writeFileAtomic,
  writeJsonAtomic,
} from "../pipeline/lib/atomic.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("atomic: temporary names are unique siblings; parentOf", () => {
  const a = temporarySibling("/x/y/report");
  const b = temporarySibling("/x/y/report");
  assert.notEqual(a, b);
  assert.ok(a.startsWith("/x/y/report.tmp-"), a);
  assert.ok(temporarySibling("/x/r", "old").startsWith("/x/r.old-"));
  assert.equal(parentOf("/x/y/z.json"), "/x/y");
  assert.equal(parentOf("/z.json"), "/");
  assert.equal(parentOf("z.json"), ".");
});

Deno.test("atomic: writeFileAtomic creates, replaces and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/out.json`;
  await writeJsonAtomic(path, { a: 1 });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), { a: 1 });
  await writeFileAtomic(path, new TextEncoder().encode("second"));
  assert.equal(await Deno.readTextFile(path), "second");
  assert.deepEqual(await names(`${dir}/sub`), ["out.json"]);
  // A write that cannot rename (the target is a folder) fails and cleans up after itself.
  await Deno.mkdir(`${dir}/sub/folder`);
  await assert.rejects(writeFileAtomic(`${dir}/sub/folder`, "x"));
  assert.deepEqual(await names(`${dir}/sub`), ["folder", "out.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic: replaceFolderAtomic swaps the folder; a failing fill keeps the old one", async () => {
  const dir = await Deno.makeTempDir();
  const target = `${dir}/report`;
  await replaceFolderAtomic(target, async (d) => {
    await Deno.writeTextFile(`${d}/a.txt`, "one");
  });
  assert.equal(await Deno.readTextFile(`${target}/a.txt`), "one");
  await replaceFolderAtomic(target, async (d) => {
    await Deno.mkdir(`${d}/figures`);
    await Deno.writeTextFile(`${d}/figures/b.txt`, "two");
  });
  assert.deepEqual(await names(target), ["figures"]);
  await assert.rejects(
    replaceFolderAtomic(target, async (d) => {
      await Deno.writeTextFile(`${d}/half.txt`, "half");
      throw new Error("fill failed");
    }),
    /fill failed/,
  );
  assert.deepEqual(await names(target), ["figures"]);
  assert.deepEqual(await names(dir), ["report"]); // no temporary or old folder left
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic: when the second rename fails, the old folder is put back", async () => {
  const dir = await Deno.makeTempDir();
  const target = `${dir}/report`;
  await replaceFolderAtomic(target, (d) => Deno.writeTextFile(`${d}/keep.txt`, "old"));
  // The fill moves its own temporary folder away, so renaming it into place fails after
  // the old folder was already moved aside.
  await assert.rejects(
    replaceFolderAtomic(target, async (d) => {
      await Deno.rename(d, `${dir}/stolen`);
    }),
  );
  assert.equal(await Deno.readTextFile(`${target}/keep.txt`), "old");
  assert.deepEqual(await names(dir), ["report", "stolen"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic: publishFolderOnce moves in once; a second writer loses cleanly", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/a`);
  await Deno.writeTextFile(`${dir}/a/x`, "first");
  assert.equal(await publishFolderOnce(`${dir}/a`, `${dir}/objects/k`), true);
  await Deno.mkdir(`${dir}/b`);
  await Deno.writeTextFile(`${dir}/b/x`, "second");
  assert.equal(await publishFolderOnce(`${dir}/b`, `${dir}/objects/k`), false);
  assert.equal(await Deno.readTextFile(`${dir}/objects/k/x`), "first");
  assert.equal(await Deno.readTextFile(`${dir}/b/x`), "second"); // left for the caller
  await Deno.remove(dir, { recursive: true });
});
