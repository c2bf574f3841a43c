import { describe, expect, it } from "vitest";
import { beamSearch, Xoshiro128, type BeamModel, type BeamStep, type Hypothesis } from "../kernels/sampling/index.ts";

/**
 * A tiny Markov "model": the logits of the next token depend only on the position and the
 * previous token (row V is the start row). Position-dependence keeps sequences that use the same
 * transitions in another order from tying exactly. A state is the token sequence so far; the
 * model counts live states and refuses to touch a released one.
 */
type State = { tokens: number[]; released: boolean };

class MarkovModel implements BeamModel<State> {
  live = 0;
  forks = 0;

  /** table[position][previous token, or V at the start] = logits. */
  constructor(readonly table: Float32Array[][], readonly async = false) {}

  get vocab(): number {
    return this.table[0]!.length - 1;
  }

  row(tokens: readonly number[]): Float32Array {
    return this.table[tokens.length]![tokens.at(-1) ?? this.vocab]!;
  }

  root() {
    this.live++;
    return { state: { tokens: [], released: false }, logits: this.row([]) };
  }

  fork(state: State) {
    if (state.released) throw new Error("fork of a released state");
    this.live++;
    this.forks++;
    return { tokens: [...state.tokens], released: false };
  }

  extend(steps: readonly BeamStep<State>[]) {
    const logits = steps.map(({ state, token }) => {
      if (state.released) throw new Error("extend of a released state");
      state.tokens.push(token);
      return this.row(state.tokens);
    });
    return this.async ? Promise.resolve(logits) : logits;
  }

  release(state: State) {
    if (state.released) throw new Error("double release");
    state.released = true;
    this.live--;
  }
}

function randomTable(vocab: number, seed: number, positions = 8): Float32Array[][] {
  const rng = new Xoshiro128(seed);
  const row = () => Float32Array.from({ length: vocab }, () => rng.nextDouble() * 6 - 3);
  return Array.from({ length: positions }, () => Array.from({ length: vocab + 1 }, row));
}

function logSoftmax(logits: Float32Array): number[] {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
  return [...logits].map((l) => l - lse);
}

/** Every hypothesis: ended by the end token, or cut at maxTokens; best first. */
function enumerate(model: MarkovModel, maxTokens: number, eos: number, alpha: number): Hypothesis[] {
  const out: Hypothesis[] = [];
  const walk = (tokens: number[], logprob: number) => {
    const lp = logSoftmax(model.row(tokens));
    for (let t = 0; t < model.vocab; t++) {
      const seq = [...tokens, t];
      const total = logprob + lp[t]!;
      const score = total / seq.length ** alpha;
      if (t === eos) out.push({ tokens: seq, logprob: total, score, finished: true });
      else if (seq.length === maxTokens) out.push({ tokens: seq, logprob: total, score, finished: false });
      else walk(seq, total);
    }
  };
  walk([], 0);
  return out.sort((a, b) => b.score - a.score);
}

function greedy(model: MarkovModel, maxTokens: number, eos: number): number[] {
  const tokens: number[] = [];
  while (tokens.length < maxTokens) {
    const lp = logSoftmax(model.row(tokens));
    const t = lp.indexOf(Math.max(...lp));
    tokens.push(t);
    if (t === eos) break;
  }
  return tokens;
}

/** HF's beam step, run to maxTokens with no early stop: what the search must return, only sooner. */
function referenceBeam(model: MarkovModel, width: number, alpha: number, maxTokens: number, eos: number): Hypothesis[] {
  let beams = [{ tokens: [] as number[], logprob: 0 }];
  const done: Hypothesis[] = [];
  const add = (tokens: number[], logprob: number, finished: boolean) => done.push({ tokens, logprob, score: logprob / tokens.length ** alpha, finished });
  for (let length = 1; length <= maxTokens; length++) {
    const expansions = beams.flatMap((b) => {
      const lp = logSoftmax(model.row(b.tokens));
      const ranked = lp.map((_, t) => t).sort((x, y) => lp[y]! - lp[x]! || x - y).slice(0, 2 * width);
      return ranked.map((t) => ({ tokens: [...b.tokens, t], logprob: b.logprob + lp[t]! }));
    });
    expansions.sort((a, b) => b.logprob - a.logprob);
    const next: typeof beams = [];
    expansions.slice(0, 2 * width).forEach((e, rank) => {
      if (e.tokens.at(-1) === eos) {
        if (rank < width) add(e.tokens, e.logprob, true);
      } else if (next.length < width) next.push(e);
    });
    if (length === maxTokens) for (const b of next) add(b.tokens, b.logprob, false);
    beams = next;
  }
  return done.sort((a, b) => b.score - a.score).slice(0, width);
}

describe("beamSearch", () => {
  const vocab = 4;
  const eos = 3;
  const maxTokens = 4;

  for (const alpha of [0, 1, 0.6, -0.5]) {
    it(`with width ≥ every hypothesis it is exhaustive search (lengthPenalty ${alpha})`, async () => {
      for (const seed of [1, 2, 3]) {
        const model = new MarkovModel(randomTable(vocab, seed));
        const all = enumerate(model, maxTokens, eos, alpha);
        const found = await beamSearch({ width: all.length, lengthPenalty: alpha, maxTokens, eos: (t) => t === eos }, model);
        expect(found.map((h) => h.tokens)).toEqual(all.map((h) => h.tokens));
        found.forEach((h, i) => {
          expect(h.finished).toBe(all[i]!.finished);
          expect(h.logprob).toBeCloseTo(all[i]!.logprob, 5);
          expect(h.score).toBeCloseTo(all[i]!.score, 5);
        });
        expect(model.live).toBe(0);
      }
    });
  }

  it("a narrower beam returns width hypotheses, best first, each scored consistently", async () => {
    const model = new MarkovModel(randomTable(5, 9));
    const found = await beamSearch({ width: 3, lengthPenalty: 1, maxTokens: 5, eos: (t) => t === 4 }, model);
    expect(found).toHaveLength(3);
    const best = enumerate(model, 5, 4, 1)[0]!;
    expect(found[0]!.score).toBeLessThanOrEqual(best.score + 1e-9);
    for (let i = 1; i < found.length; i++) expect(found[i]!.score).toBeLessThanOrEqual(found[i - 1]!.score);
    for (const h of found) {
      let lp = 0;
      h.tokens.forEach((t, i) => (lp += logSoftmax(model.row(h.tokens.slice(0, i)))[t]!));
      expect(h.logprob).toBeCloseTo(lp, 5);
      expect(h.score).toBeCloseTo(lp / h.tokens.length, 5);
      expect(h.finished).toBe(h.tokens.at(-1) === 4);
    }
    expect(model.forks).toBeGreaterThan(0);
    expect(model.live).toBe(0);
  });

  it("stopping early (no live beam can beat the finished ones) changes nothing but the work done", async () => {
    let stoppedEarly = 0;
    for (const alpha of [0, 0.5, 1, 2, -1]) {
      for (const seed of [21, 22, 23, 24]) {
        const table = randomTable(5, seed, 13);
        // A likelier end token, so hypotheses finish well before maxTokens.
        for (const rows of table) for (const row of rows) row[4]! += 1;
        const model = new MarkovModel(table);
        let steps = 0;
        const counting: BeamModel<State> = { root: () => model.root(), fork: (x) => model.fork(x), release: (x) => model.release(x), extend: (batch) => ((steps += batch.length), model.extend(batch)) };
        const found = await beamSearch({ width: 3, lengthPenalty: alpha, maxTokens: 12, eos: (t) => t === 4 }, counting);
        expect(found).toEqual(referenceBeam(model, 3, alpha, 12, 4));
        if (steps < 3 * 11) stoppedEarly++;
        expect(model.live).toBe(0);
      }
    }
    expect(stoppedEarly).toBeGreaterThan(4);
  });

  it("width 1 is greedy decoding (lengthPenalty 0)", async () => {
    for (let seed = 10; seed < 30; seed++) {
      const model = new MarkovModel(randomTable(5, seed));
      const [best] = await beamSearch({ width: 1, lengthPenalty: 0, maxTokens: 8, eos: (t) => t === 4 }, model);
      expect(best!.tokens).toEqual(greedy(model, 8, 4));
      expect(model.forks).toBe(0);
    }
  });

  it("works with an asynchronous model", async () => {
    const sync = await beamSearch({ width: 4, lengthPenalty: 1, maxTokens: 5, eos: (t) => t === 3 }, new MarkovModel(randomTable(4, 5)));
    const model = new MarkovModel(randomTable(4, 5), true);
    const found = await beamSearch({ width: 4, lengthPenalty: 1, maxTokens: 5, eos: (t) => t === 3 }, model);
    expect(found).toEqual(sync);
    expect(model.live).toBe(0);
  });

  it("releases every state when the model fails mid-search", async () => {
    const model = new MarkovModel(randomTable(4, 6));
    let calls = 0;
    const failing: BeamModel<State> = {
      root: () => model.root(),
      fork: (s) => model.fork(s),
      release: (s) => model.release(s),
      extend: (steps) => {
        if (++calls === 3) throw new Error("device lost");
        return model.extend(steps);
      },
    };
    await expect(beamSearch({ width: 3, lengthPenalty: 0, maxTokens: 6, eos: () => false }, failing)).rejects.toThrow("device lost");
    expect(model.live).toBe(0);
  });

  it("refuses bad options", async () => {
    const model = new MarkovModel(randomTable(3, 1));
    const eosNever = () => false;
    await expect(beamSearch({ width: 0, lengthPenalty: 0, maxTokens: 3, eos: eosNever }, model)).rejects.toThrow(/width must be/);
    await expect(beamSearch({ width: 2, lengthPenalty: 0, maxTokens: 0, eos: eosNever }, model)).rejects.toThrow(/maxTokens must be/);
    await expect(beamSearch({ width: 2, lengthPenalty: NaN, maxTokens: 3, eos: eosNever }, model)).rejects.toThrow(/lengthPenalty must be/);
  });
});
