/**
 * Dataset files come from the internet: a file that lies about its size (a parquet footer
 * claiming 1e12 rows, a pickle of shared lists, a 20000 x 20000 PNG) is refused before it
 * can hang the loader or fill memory, with an error naming the file. Fixtures are built in
 * code; a loader that would hang or blow up runs in a child process with a small heap and a
 * deadline, so a regression fails instead of taking the machine down.
 */
import assert from "node:assert/strict";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { ROOT } from "./cli.ts";

/** Runs `code` (a module body) in a child Deno with a 384 MiB heap; killed after `ms`. */
async function inChild(code: string, ms = 30_000): Promise<{ ok: boolean; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--no-check",
      "--config",
      `${ROOT}deno.json`,
      "--v8-flags=--max-old-space-size=384",
      code,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: out.success, output: `${text(out.stdout)}${text(out.stderr)}` };
}

/** A module specifier for a repository file, for code run by `inChild`. */
function moduleUrl(path: string): string {
  return JSON.stringify(new URL(path, `file://${ROOT}`).href);
}

/** Reads every record of `path` in a child; prints `rows N` or `error: MESSAGE`. */
function readAllInChild(path: string): Promise<{ ok: boolean; output: string }> {
  return inChild(`
    import { readRecords } from ${moduleUrl("tasks/image_io.ts")};
    let n = 0;
    try {
      for await (const _ of readRecords(${JSON.stringify(path)})) n++;
      console.log("rows", n);
    } catch (e) {
      console.log("error:", e.message);
    }
  `);
}

/** A small valid parquet file of three labels, with its footer's row counts rewritten. */
function parquetClaiming(total: bigint, group: bigint | null): Uint8Array {
  const writer = new ByteWriter();
  const pq = new ParquetWriter({
    writer,
    schema: [
      { name: "root", num_children: 1 },
      { name: "label", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
    ],
  });
  pq.write({ columnData: [{ name: "label", data: ["cat", "dog", "cow"] }] });
  pq.num_rows = total;
  if (group !== null) pq.row_groups[0].num_rows = group;
  pq.finish();
  return new Uint8Array(writer.getBuffer());
}

Deno.test("parquet: a footer claiming 1e12 rows is refused before reading, naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-limits-" });
  const honest = `${dir}/honest.parquet`;
  await Deno.writeFile(honest, parquetClaiming(3n, null));
  assert.match((await readAllInChild(honest)).output, /^rows 3$/m);

  // The total disagrees with the row groups (3 rows of data).
  const total = `${dir}/total.parquet`;
  await Deno.writeFile(total, parquetClaiming(10n ** 12n, null));
  const a = await readAllInChild(total);
  assert.match(
    a.output,
    /error: total\.parquet: damaged parquet footer: it claims 1000000000000 rows, but its 1 row groups hold 3/,
  );

  // Total and row group agree, but the column chunk holds 3 values.
  const both = `${dir}/both.parquet`;
  await Deno.writeFile(both, parquetClaiming(10n ** 12n, 10n ** 12n));
  const b = await readAllInChild(both);
  assert.match(
    b.output,
    /error: both\.parquet: damaged parquet footer: row group 1 column 1 holds 3 values, fewer than the 1000000000000 rows/,
  );

  // Consistent counts above the documented maximum.
  const { checkedRowCount, MAX_PARQUET_ROWS } = await import("../tasks/image_io.ts");
  const { parquetMetadata } = await import("hyparquet");
  const bytes = parquetClaiming(3n, null);
  const meta = parquetMetadata(bytes.buffer as ArrayBuffer);
  assert.equal(checkedRowCount(meta, bytes.length, "x.parquet"), 3);
  const many = BigInt(MAX_PARQUET_ROWS) + 1n;
  meta.num_rows = many;
  meta.row_groups[0].num_rows = many;
  meta.row_groups[0].columns[0].meta_data!.num_values = many;
  assert.throws(
    () => checkedRowCount(meta, bytes.length, "x.parquet"),
    /x\.parquet: damaged parquet footer: it claims 10000001 rows, expected at most 10000000/,
  );
  // A column chunk said to lie past the end of the data.
  meta.num_rows = 3n;
  meta.row_groups[0].num_rows = 3n;
  meta.row_groups[0].columns[0].meta_data!.total_compressed_size = 10n ** 9n;
  assert.throws(
    () => checkedRowCount(meta, bytes.length, "x.parquet"),
    /x\.parquet: damaged parquet footer: row group 1 column 1 spans bytes \d+-\d+, expected them inside the data section/,
  );
  await Deno.remove(dir, { recursive: true });
});

/**
 * A pickle of shared lists built opcode by opcode: list 0 is empty; list i holds list i-1
 * `fanout` times (BINGET of its memo slot), so the top list has fanout^depth paths to the
 * empty list in a few hundred bytes.
 */
function sharedListsPickle(depth: number, fanout: number): Uint8Array {
  const PROTO = 0x80, EMPTY_LIST = 0x5d, BINPUT = 0x71, BINGET = 0x68, MARK = 0x28;
  const APPENDS = 0x65, POP = 0x30, STOP = 0x2e;
  const out = [PROTO, 2, EMPTY_LIST, BINPUT, 0, POP];
  for (let i = 1; i <= depth; i++) {
    out.push(EMPTY_LIST, BINPUT, i, MARK);
    for (let k = 0; k < fanout; k++) out.push(BINGET, i - 1);
    out.push(APPENDS, POP);
  }
  out.push(BINGET, depth, STOP);
  return new Uint8Array(out);
}

Deno.test("pickle: shared lists stay shared; 2^40 paths in 409 bytes are refused", async () => {
  const { readPickleData, MAX_PICKLE_VALUES } = await import("../tasks/refcoco.ts");
  // Small: every level's two items are one and the same list, as in the file.
  const small = readPickleData(sharedListsPickle(3, 2), "small.p") as unknown[][];
  assert.equal(small.length, 2);
  assert.equal(small[0], small[1], "a shared list was copied");
  assert.deepEqual(small[0], [[[], []], [[], []]]);

  const dir = await Deno.makeTempDir({ prefix: "klal-limits-" });
  const bomb = sharedListsPickle(40, 2);
  assert.equal(bomb.length, 409);
  await Deno.writeFile(`${dir}/refs(unc).p`, bomb);
  const { ok, output } = await inChild(`
    import { readPickleData } from ${moduleUrl("tasks/refcoco.ts")};
    const bytes = await Deno.readFile(${JSON.stringify(`${dir}/refs(unc).p`)});
    try {
      readPickleData(bytes, "refs(unc).p");
      console.log("read");
    } catch (e) {
      console.log("error:", e.message);
    }
  `);
  assert.ok(ok, output);
  assert.match(
    output,
    new RegExp(
      `error: refs\\(unc\\)\\.p: the pickle holds ${2 ** 41 - 1} values counting each place ` +
        `a shared list or dict appears, expected at most ${MAX_PICKLE_VALUES}`,
    ),
  );

  // A list that contains itself (APPEND of its own memo slot) is refused, not walked.
  const cycle = new Uint8Array([0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]);
  assert.throws(
    () => readPickleData(cycle, "cycle.p"),
    /cycle\.p: pickle holds a list or dict that contains itself/,
  );
  await Deno.remove(dir, { recursive: true });
});
