/**
 * The candidate set of one sampling step and the truncation filters over it (llama.cpp's top-k,
 * top-p, min-p semantics). Candidates are token ids in a reusable vocab-sized scratch; the first
 * `sortedPrefix` of them are known to be ranked (best first) and to beat all the rest, so each
 * filter sorts only as far as it needs to.
 */
import { selectTop } from "./select-top.ts";

/** Logit buckets top-p uses to find where the nucleus ends without ranking the whole vocabulary. */
const BUCKETS = 1024;
const BUCKET_SPAN = 64;

export class Candidates {
  readonly ids: Int32Array;
  n = 0;
  private sortedPrefix = 0;
  private logits: Float32Array = new Float32Array(0);
  private readonly bucketMass = new Float64Array(BUCKETS);

  constructor(nVocab: number) {
    this.ids = new Int32Array(nVocab);
  }

  /** Every token whose logit is above −Infinity (banned tokens never become candidates). */
  reset(logits: Float32Array): void {
    this.logits = logits;
    let n = 0;
    for (let id = 0; id < logits.length; id++) if (logits[id]! > -Infinity) this.ids[n++] = id;
    if (n === 0) throw new Error("no token can be sampled: every logit is -Infinity or NaN");
    this.n = n;
    this.sortedPrefix = 0;
  }

  logitAt(i: number): number {
    return this.logits[this.ids[i]!]!;
  }

  maxLogit(): number {
    if (this.sortedPrefix > 0) return this.logitAt(0);
    let max = -Infinity;
    for (let i = 0; i < this.n; i++) max = Math.max(max, this.logitAt(i));
    return max;
  }

  /** Keeps the k best; k = 0 keeps all. */
  keepTopK(k: number): void {
    if (k <= 0 || k >= this.n) return;
    if (k > this.sortedPrefix) selectTop(this.ids, this.n, k, this.logits);
    this.sortedPrefix = k;
    this.n = k;
  }

  /**
   * Keeps the shortest ranked prefix whose probability (at temperature 1) reaches p. Unranked
   * candidates are bucketed by logit first; only the bucket where the mass crosses p is ranked.
   */
  keepTopP(p: number): void {
    if (p >= 1) return;
    const max = this.maxLogit();
    if (this.sortedPrefix === this.n) {
      let total = 0;
      for (let i = 0; i < this.n; i++) total += Math.exp(this.logitAt(i) - max);
      this.cutAtMass(0, 0, p * total, max);
      return;
    }
    let min = Infinity;
    for (let i = 0; i < this.n; i++) min = Math.min(min, this.logitAt(i));
    // Logits more than BUCKET_SPAN below the best weigh < e^-64 each: too little to hold the
    // nucleus boundary, so they share the last bucket rather than stretch the others.
    const span = Math.min(max - min, BUCKET_SPAN);
    const scale = span > 0 ? (BUCKETS - 1) / span : 0;
    const bucketOf = (logit: number) => Math.min(BUCKETS - 1, Math.floor((max - logit) * scale)); // 0 holds the best
    const mass = this.bucketMass.fill(0);
    let total = 0;
    for (let i = 0; i < this.n; i++) {
      const logit = this.logitAt(i);
      const w = Math.exp(logit - max);
      mass[bucketOf(logit)]! += w;
      total += w;
    }
    const target = p * total;
    let boundary = 0;
    let above = 0;
    while (boundary < BUCKETS - 1 && above + mass[boundary]! < target) above += mass[boundary++]!;

    // Three-way partition: buckets before the boundary | the boundary bucket | the dropped rest.
    const ids = this.ids;
    let lo = 0;
    let hi = this.n;
    for (let i = 0; i < hi; ) {
      const b = bucketOf(this.logitAt(i));
      if (b < boundary) {
        const t = ids[lo]!;
        ids[lo++] = ids[i]!;
        ids[i++] = t;
      } else if (b > boundary) {
        const t = ids[--hi]!;
        ids[hi] = ids[i]!;
        ids[i] = t;
      } else i++;
    }
    selectTop(ids.subarray(lo, hi), hi - lo, hi - lo, this.logits);
    this.n = hi;
    this.cutAtMass(lo, above, target, max);
    this.sortedPrefix = lo === 0 ? this.n : 0;
  }

  /** Walks the ranked candidates from `start`, keeping them until the running mass reaches `target`. */
  private cutAtMass(start: number, mass: number, target: number, max: number): void {
    for (let i = start; i < this.n; i++) {
      mass += Math.exp(this.logitAt(i) - max);
      if (mass >= target) {
        this.n = i + 1;
        return;
      }
    }
    // Rounding left the mass a hair short of the target: keep everything.
  }

  /** Keeps tokens whose probability is at least p × the best one's: logit ≥ max + ln p. */
  keepMinP(p: number): void {
    if (p <= 0) return;
    const threshold = this.maxLogit() + Math.log(p);
    let kept = 0;
    let keptRanked = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.logitAt(i) < threshold) continue;
      if (i < this.sortedPrefix) keptRanked++;
      this.ids[kept++] = this.ids[i]!;
    }
    this.n = kept;
    this.sortedPrefix = keptRanked;
  }
}
