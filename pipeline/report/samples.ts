/**
 * Per-item predictions in the shape lmms-eval (and lm-evaluation-harness) write with
 * `--log_samples`: one JSON object a line, per test item, so tools that read those logs
 * (their summarizers, converters, notebooks) read ours. docs/formats.md lists the fields.
 */
import { sha256Hex } from "../lib/hash.ts";

/** One test item as the eval stage writes it (predictions.jsonl of an eval entry). */
export interface PredictionLine {
  index: number;
  prompt: string;
  answer: string;
  prediction: string;
  correct: boolean;
  difficulty?: string | number;
  targetAttention?: number;
  image?: string;
}

/** Where a prediction came from: task, arm, seed and how it was decoded. */
export interface SampleSource {
  task: string;
  arm: string;
  seed: number;
  /** The answer's token budget of greedy decoding (gen_kwargs.max_new_tokens). */
  maxNewTokens?: number;
}

/** The generation settings every prediction was made with: greedy, deterministic. */
function genKwargs(source: SampleSource): Record<string, unknown> {
  return {
    do_sample: false,
    temperature: 0,
    ...(source.maxNewTokens === undefined ? {} : { max_new_tokens: source.maxNewTokens }),
  };
}

/**
 * One prediction as an lmms-eval sample: doc_id, doc (the item: prompt, answer, image,
 * difficulty), target, arguments ([[prompt, gen_kwargs]]), resps ([[prediction]]),
 * filtered_resps ([prediction]), the SHA-256 of doc, prompt and target, and the metrics:
 * exact_match (the task's scorer: 1 right, 0 wrong) and target_attention.
 */
export async function lmmsSample(
  p: PredictionLine,
  source: SampleSource,
): Promise<Record<string, unknown>> {
  const doc = {
    task: source.task,
    prompt: p.prompt,
    answer: p.answer,
    ...(p.image === undefined ? {} : { image: p.image }),
    ...(p.difficulty === undefined ? {} : { difficulty: p.difficulty }),
  };
  return {
    doc_id: p.index,
    doc,
    target: p.answer,
    arguments: [[p.prompt, genKwargs(source)]],
    resps: [[p.prediction]],
    filtered_resps: [p.prediction],
    doc_hash: await sha256Hex(JSON.stringify(doc)),
    prompt_hash: await sha256Hex(p.prompt),
    target_hash: await sha256Hex(p.answer),
    exact_match: p.correct ? 1 : 0,
    ...(p.targetAttention === undefined ? {} : { target_attention: p.targetAttention }),
    arm: source.arm,
    seed: source.seed,
  };
}

/** predictions.jsonl text as lmms-eval samples JSONL text (one line per item, same order). */
export async function lmmsSamplesJsonl(text: string, source: SampleSource): Promise<string> {
  const lines = text.split("\n").filter((l) => l.trim().length > 0);
  const out: string[] = [];
  for (const line of lines) {
    out.push(JSON.stringify(await lmmsSample(JSON.parse(line) as PredictionLine, source)));
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

/** The file a run's samples go to under a report: `samples/<task>/samples_<arm>_s<seed>.jsonl`. */
export function samplesPath(source: SampleSource, testSet?: string): string {
  const set = testSet ? `_${testSet}` : "";
  return `samples/${source.task}${set}/samples_${source.arm}_s${source.seed}.jsonl`;
}
