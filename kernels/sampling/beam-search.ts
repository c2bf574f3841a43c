/**
 * Beam search over a model abstracted as forkable states (for the engine: one KV-cache per beam,
 * forked with copyPrefixTo). Scores are sums of log-softmax probabilities; a hypothesis is
 * ranked by logprob / length^lengthPenalty as in Hugging Face, where length counts generated
 * tokens including the end token. Follows HF's beam step: the 2·width best expansions are
 * considered in order; an end token among the first `width` of them finishes a hypothesis, the
 * others continue until `width` beams are live. The search stops when no live beam can still
 * beat the worst of `width` finished hypotheses (HF's early_stopping="never" bound), or at
 * maxTokens, where the live beams join the hypotheses unfinished.
 */
import { selectTop } from "./select-top.ts";

export interface BeamModel<S> {
  /** The state after the prompt, and the logits predicting the first generated token. */
  root(): BeamStart<S> | Promise<BeamStart<S>>;
  /** An independent copy of `state` (the original stays usable). */
  fork(state: S): S | Promise<S>;
  /**
   * Appends one token to each state — every live beam's next token, so the engine can run them
   * as one batch — and returns each state's logits for the token after it, in order. The logits
   * are read before the next call.
   */
  extend(steps: readonly BeamStep<S>[]): Float32Array[] | Promise<Float32Array[]>;
  /** `state` will not be used again. */
  release(state: S): void;
}

export interface BeamStart<S> {
  state: S;
  logits: Float32Array;
}

export interface BeamStep<S> {
  state: S;
  token: number;
}

export interface BeamSearchOptions {
  width: number;
  /** α in score = logprob / length^α: > 0 favours longer hypotheses, < 0 shorter ones. */
  lengthPenalty: number;
  maxTokens: number;
  /** True for tokens that end a hypothesis (the model's end-of-generation tokens). */
  eos: (id: number) => boolean;
}

export interface Hypothesis {
  tokens: number[];
  /** Sum of the tokens' log-probabilities. */
  logprob: number;
  /** logprob / tokens.length^lengthPenalty: what hypotheses are ranked by. */
  score: number;
  /** Ended with an end token (false: cut at maxTokens). */
  finished: boolean;
}

interface Continuation {
  token: number;
  logprob: number;
}

interface Beam<S> {
  state: S;
  tokens: number[];
  logprob: number;
  /** This beam's best next tokens, read from its logits as soon as they were computed. */
  next: Continuation[];
}

interface Expansion {
  parent: number;
  token: number;
  logprob: number;
}

/** The `width` best hypotheses found, best first (on equal scores, the one found first). */
export async function beamSearch<S>(opts: BeamSearchOptions, model: BeamModel<S>): Promise<Hypothesis[]> {
  const { width, lengthPenalty, maxTokens, eos } = opts;
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`width must be an integer ≥ 1, got ${width}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be an integer ≥ 1, got ${maxTokens}`);
  if (!Number.isFinite(lengthPenalty)) throw new RangeError(`lengthPenalty must be a finite number, got ${lengthPenalty}`);
  const score = (logprob: number, length: number) => logprob / length ** lengthPenalty;
  const reader = new ContinuationReader(2 * width);
  const held = new Set<S>();
  const best = new RankedList(width);

  try {
    const start = await model.root();
    held.add(start.state);
    let live: Beam<S>[] = [{ state: start.state, tokens: [], logprob: 0, next: reader.read(start.logits) }];
    for (let length = 1; length <= maxTokens && live.length > 0; length++) {
      const conclude = (e: Expansion, finished: boolean) =>
        best.add({ tokens: [...live[e.parent]!.tokens, e.token], logprob: e.logprob, score: score(e.logprob, length), finished });
      const continuing: Expansion[] = [];
      rankExpansions(live).slice(0, 2 * width).forEach((e, rank) => {
        if (eos(e.token)) {
          if (rank < width) conclude(e, true);
        } else if (continuing.length < width) continuing.push(e);
      });
      if (length === maxTokens) {
        for (const e of continuing) conclude(e, false);
        break;
      }
      // A beam's logprob can only fall; its best possible score is at the most favourable length still reachable.
      const bestLength = lengthPenalty > 0 ? maxTokens : length + 1;
      if (best.full() && continuing.every((e) => score(e.logprob, bestLength) <= best.worst())) break;
      live = await advance(live, continuing, model, held);
      const logits = await model.extend(live.map((b) => ({ state: b.state, token: b.tokens.at(-1)! })));
      live.forEach((beam, i) => (beam.next = reader.read(logits[i]!)));
    }
  } finally {
    for (const state of held) model.release(state);
  }
  return best.items;
}

/** Every live beam's continuations as expansions, best first (ties: earlier beam, then lower rank). */
function rankExpansions<S>(live: Beam<S>[]): Expansion[] {
  const all: Expansion[] = [];
  live.forEach((beam, parent) => {
    for (const c of beam.next) all.push({ parent, token: c.token, logprob: beam.logprob + c.logprob });
  });
  return all.sort((a, b) => b.logprob - a.logprob); // stable: keeps the tie order above
}

/**
 * The next live beams: a parent's first child takes over its state, further children fork it
 * (before the first child extends it), and childless parents are released.
 */
async function advance<S>(live: Beam<S>[], continuing: Expansion[], model: BeamModel<S>, held: Set<S>): Promise<Beam<S>[]> {
  const taken = new Set<number>();
  const next: Beam<S>[] = [];
  for (const e of continuing) {
    const parent = live[e.parent]!;
    let state = parent.state;
    if (taken.has(e.parent)) {
      state = await model.fork(parent.state);
      held.add(state);
    }
    taken.add(e.parent);
    next.push({ state, tokens: [...parent.tokens, e.token], logprob: e.logprob, next: [] });
  }
  live.forEach((beam, i) => {
    if (taken.has(i)) return;
    held.delete(beam.state);
    model.release(beam.state);
  });
  return next;
}

/** Reads a beam's `count` most likely next tokens and their log-softmax probabilities. */
class ContinuationReader {
  private ids = new Int32Array(0);

  constructor(private readonly count: number) {}

  read(logits: Float32Array): Continuation[] {
    if (this.ids.length !== logits.length) this.ids = new Int32Array(logits.length);
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
    const logNorm = max + Math.log(sum);
    for (let i = 0; i < logits.length; i++) this.ids[i] = i;
    const k = Math.min(this.count, logits.length);
    selectTop(this.ids, logits.length, k, logits);
    const out: Continuation[] = [];
    for (let i = 0; i < k; i++) {
      const token = this.ids[i]!;
      if (logits[token]! > -Infinity) out.push({ token, logprob: logits[token]! - logNorm });
    }
    return out;
  }
}

/** The `limit` best hypotheses by score; a later one must beat, not tie, to displace. */
class RankedList {
  readonly items: Hypothesis[] = [];

  constructor(private readonly limit: number) {}

  add(h: Hypothesis): void {
    let at = this.items.length;
    while (at > 0 && this.items[at - 1]!.score < h.score) at--;
    if (at >= this.limit) return;
    this.items.splice(at, 0, h);
    if (this.items.length > this.limit) this.items.pop();
  }

  full(): boolean {
    return this.items.length >= this.limit;
  }

  worst(): number {
    return this.items.at(-1)!.score;
  }
}
