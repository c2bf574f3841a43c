/**
 * The fixture rule of tests/fixtures/reference/README.md ("What counts as a match"), as code:
 * teacher-forced logits within t of the reference, and greedy tokens equal up to the first near-tie.
 */
import { argmax } from "../../kernels/model/generate.ts";
import type { Model } from "../../kernels/model/model.ts";

export interface ReferenceRun {
  prompt: number[];
  logits0: number[];
  tokens: number[];
  top2: [number, number, number, number][];
  gap: number[];
  std_steps: number[];
  logits0_f64?: number[];
  tokens_f64?: number[];
  gap_f64?: number[];
  top2_f64?: [number, number][];
}

export interface ReferenceFile {
  model: string;
  runs: ReferenceRun[];
}

export function isQuantized(model: string): boolean {
  return !model.includes("F32") && !model.includes("F16");
}

/** What a backend produced for one run. */
export interface RunOutput {
  /** Teacher-forced logits: row 0 after the prompt, row s after prompt + tokens[:s]. */
  forcedRows: Float32Array[];
  /** The backend's own greedy continuation. */
  greedy: number[];
}

/** Which reference a backend is held to (README: float activations → f64, Q8 activations → llama.cpp). */
export type Reference = "llama" | "f64";

/** Returns null when the run matches, else a description of the first mismatch. */
export function checkRun(run: ReferenceRun, out: RunOutput, reference: Reference, scale: number): string | null {
  const steps = run.tokens.length;
  if (out.forcedRows.length < steps) return `only ${out.forcedRows.length} logit rows for ${steps} steps`;
  const logits0 = reference === "llama" ? run.logits0 : run.logits0_f64;
  if (!logits0) return `no ${reference} reference`;
  const t0 = scale * run.std_steps[0]!;
  const row0 = out.forcedRows[0]!;
  for (let i = 0; i < logits0.length; i++) {
    if (Math.abs(row0[i]! - logits0[i]!) > t0) return `logits after prompt: id ${i} is ${row0[i]}, reference ${logits0[i]} (t=${t0})`;
  }
  for (let s = 0; s < steps; s++) {
    const [id1, l1, id2, l2] = run.top2[s]!;
    const [v1, v2] = reference === "llama" ? [l1, l2] : run.top2_f64![s]!;
    const t = scale * run.std_steps[s]!;
    const row = out.forcedRows[s]!;
    if (Math.abs(row[id1]! - v1) > t || Math.abs(row[id2]! - v2) > t) {
      return `teacher-forced step ${s}: [${row[id1]}, ${row[id2]}] vs [${v1}, ${v2}] (t=${t})`;
    }
  }
  const [refTokens, gap] = reference === "llama" ? [run.tokens, run.gap] : [run.tokens_f64!, run.gap_f64!];
  for (let s = 0; s < steps; s++) {
    if (gap[s]! < 2 * scale * run.std_steps[s]!) break; // after a near-tie either continuation is right
    if (out.greedy[s] !== refTokens[s]) return `greedy step ${s}: ${out.greedy[s]} vs ${refTokens[s]}`;
  }
  return null;
}

/** A forward call the fixture run needs: on its teacher-forced cache (0) or its greedy one (1). */
interface FixtureForward {
  cache: 0 | 1;
  tokens: number[];
}

/**
 * One fixture run as a sequence of forward calls: teacher-forced rows, and our own greedy
 * continuation. Greedy follows the forced rows for as long as our argmax agrees with the forced
 * tokens (the states are identical up to there), then decodes on its own from that point.
 */
function* fixtureSteps(run: ReferenceRun): Generator<FixtureForward, RunOutput, Float32Array> {
  const steps = run.tokens.length;
  const forcedRows = [yield { cache: 0, tokens: run.prompt }];
  for (let s = 0; s + 1 < steps; s++) forcedRows.push(yield { cache: 0, tokens: [run.tokens[s]!] });

  const greedy: number[] = [];
  while (greedy.length < steps && (greedy.length === 0 || greedy.at(-1) === run.tokens[greedy.length - 1])) {
    greedy.push(argmax(forcedRows[greedy.length]!));
  }
  if (greedy.length < steps) {
    let logits = yield { cache: 1, tokens: [...run.prompt, ...greedy] };
    while (greedy.length < steps) {
      greedy.push(argmax(logits));
      if (greedy.length < steps) logits = yield { cache: 1, tokens: [greedy.at(-1)!] };
    }
  }
  return { forcedRows, greedy };
}

/** Runs one fixture run on a loaded model (see fixtureSteps). */
export function runFixture(model: Model, run: ReferenceRun): RunOutput {
  const nCtx = run.prompt.length + run.tokens.length + 1;
  const caches = [model.createCache({ nCtx }), model.createCache({ nCtx })];
  const it = fixtureSteps(run);
  let next = it.next();
  while (!next.done) next = it.next(model.forward(caches[next.value.cache]!, next.value.tokens));
  return next.value;
}

/** A model whose forward is asynchronous (a pipeline of shards). */
export interface AsyncForwardModel<C> {
  createCache(opts: { nCtx: number }): C;
  forward(cache: C, tokens: number[]): Promise<Float32Array>;
}

/** runFixture for a model whose forward is asynchronous. */
export async function runFixtureAsync<C>(model: AsyncForwardModel<C>, run: ReferenceRun): Promise<RunOutput> {
  const nCtx = run.prompt.length + run.tokens.length + 1;
  const caches = [model.createCache({ nCtx }), model.createCache({ nCtx })];
  const it = fixtureSteps(run);
  let next = it.next();
  while (!next.done) next = it.next(await model.forward(caches[next.value.cache]!, next.value.tokens));
  return next.value;
}
