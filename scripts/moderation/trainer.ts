/**
 * One-vs-rest logistic regression over hashed n-gram features, trained with full-batch Adam
 * (deterministic: zero initialization, fixed iteration order, seeded fold assignment).
 * Thresholds are chosen on out-of-fold predictions of the training set only.
 */
import { CATEGORIES, type Category, type CategoryMap, categoryMap } from "../../kernels/moderation/taxonomy.ts";
import { type FeaturizerSpec, type SparseFeatures, featurizeSparse } from "../../kernels/moderation/features.ts";
import { linearScores } from "../../kernels/moderation/linear.ts";
import { type LabelledItem, isHarmful } from "./dataset.ts";

export interface TrainConfig {
  featurizer: FeaturizerSpec;
  epochs: number;
  learningRate: number;
  /** L2 penalty on W (loss is the weighted mean log-loss) */
  l2: number;
  /** positives of category c weigh (negatives/positives)^power */
  positiveWeightPower: number;
  seed: number;
  folds: number;
  /** the largest out-of-fold false-positive rate the threshold may allow */
  targetFpr: number;
}

export const DEFAULT_TRAIN_CONFIG: Omit<TrainConfig, "featurizer"> = {
  epochs: 300,
  learningRate: 0.2,
  l2: 1e-4,
  positiveWeightPower: 0.5,
  seed: 7,
  folds: 5,
  targetFpr: 0.08,
};

export interface LinearWeights {
  /** row-major [D, C] */
  weights: Float32Array;
  bias: Float32Array;
  finalLoss: number;
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function labelMatrix(items: readonly LabelledItem[], categories: readonly Category[] = CATEGORIES): Uint8Array {
  const C = categories.length;
  const Y = new Uint8Array(items.length * C);
  items.forEach((it, i) => categories.forEach((c, j) => (Y[i * C + j] = it.labels.has(c) ? 1 : 0)));
  return Y;
}

export function fitLinear(X: readonly SparseFeatures[], Y: Uint8Array, C: number, D: number, cfg: Omit<TrainConfig, "featurizer" | "folds" | "targetFpr" | "seed">): LinearWeights {
  const N = X.length;
  const W = new Float64Array(D * C);
  const b = new Float64Array(C);
  // per-category class weights
  const posW = new Float64Array(C);
  for (let j = 0; j < C; j++) {
    let pos = 0;
    for (let i = 0; i < N; i++) pos += Y[i * C + j]!;
    posW[j] = pos > 0 ? Math.max(1, ((N - pos) / pos) ** cfg.positiveWeightPower) : 1;
  }
  const mW = new Float64Array(D * C), vW = new Float64Array(D * C);
  const mb = new Float64Array(C), vb = new Float64Array(C);
  const gW = new Float64Array(D * C), gb = new Float64Array(C);
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const z = new Float64Array(C);
  let loss = 0;
  for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
    gW.fill(0);
    gb.fill(0);
    loss = 0;
    for (let i = 0; i < N; i++) {
      const { indices, values } = X[i]!;
      z.set(b);
      for (let k = 0; k < indices.length; k++) {
        const base = indices[k]! * C;
        const v = values[k]!;
        for (let j = 0; j < C; j++) z[j]! += v * W[base + j]!;
      }
      for (let j = 0; j < C; j++) {
        const y = Y[i * C + j]!;
        const p = 1 / (1 + Math.exp(-z[j]!));
        const w = y ? posW[j]! : 1;
        loss += -w * (y ? Math.log(p + 1e-12) : Math.log(1 - p + 1e-12));
        const g = (w * (p - y)) / N;
        z[j] = g;
        gb[j]! += g;
      }
      for (let k = 0; k < indices.length; k++) {
        const base = indices[k]! * C;
        const v = values[k]!;
        for (let j = 0; j < C; j++) gW[base + j]! += v * z[j]!;
      }
    }
    loss /= N;
    const c1 = 1 - beta1 ** epoch, c2 = 1 - beta2 ** epoch;
    for (let q = 0; q < W.length; q++) {
      const g = gW[q]! + cfg.l2 * W[q]!;
      mW[q] = beta1 * mW[q]! + (1 - beta1) * g;
      vW[q] = beta2 * vW[q]! + (1 - beta2) * g * g;
      W[q]! -= (cfg.learningRate * (mW[q]! / c1)) / (Math.sqrt(vW[q]! / c2) + eps);
    }
    for (let j = 0; j < C; j++) {
      const g = gb[j]!;
      mb[j] = beta1 * mb[j]! + (1 - beta1) * g;
      vb[j] = beta2 * vb[j]! + (1 - beta2) * g * g;
      b[j]! -= (cfg.learningRate * (mb[j]! / c1)) / (Math.sqrt(vb[j]! / c2) + eps);
    }
  }
  return { weights: Float32Array.from(W), bias: Float32Array.from(b), finalLoss: loss };
}

/** sigmoid(x·W + b) (kernels/moderation/linear.ts). */
export function predictRow(x: SparseFeatures, w: LinearWeights): Float64Array {
  return linearScores(x, { W: w.weights, b: w.bias });
}

/** Stratified (harmful/benign) fold assignment with a seeded shuffle. */
export function assignFolds(items: readonly LabelledItem[], folds: number, seed: number): Int32Array {
  const rand = rng(seed);
  const out = new Int32Array(items.length);
  for (const group of [true, false]) {
    const idx = items.map((it, i) => [it, i] as const).filter(([it]) => isHarmful(it) === group).map(([, i]) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    idx.forEach((i, k) => (out[i] = k % folds));
  }
  return out;
}

export interface ThresholdChoice {
  threshold: number;
  oofRecall: number;
  oofFpr: number;
}

/**
 * One shared threshold on the per-category scores ("flag if any category ≥ t"): the lowest
 * t whose out-of-fold false-positive rate on benign items is ≤ target, which maximizes recall
 * under that constraint; placed halfway to the next-lower benign score for a margin.
 */
export function chooseThreshold(items: readonly LabelledItem[], oof: readonly CategoryMap<number>[], targetFpr: number): ThresholdChoice {
  const maxScore = oof.map((s) => Math.max(...CATEGORIES.map((c) => s[c])));
  const benign = items.map((it, i) => (isHarmful(it) ? -1 : maxScore[i]!)).filter((s) => s >= 0).sort((a, b) => b - a);
  const allowed = Math.floor(targetFpr * benign.length); // benign items allowed at or above t
  // t must be above the (allowed+1)-th highest benign score
  const blocker = benign[allowed] ?? 0;
  const above = allowed > 0 ? benign[allowed - 1]! : 1;
  let threshold = Math.min(0.99, blocker + (above - blocker) * 0.5);
  if (!(threshold > blocker)) threshold = Math.min(0.999, blocker + 1e-6);
  threshold = Math.max(threshold, 0.05);
  let tp = 0, harmful = 0, fp = 0;
  items.forEach((it, i) => {
    const hit = maxScore[i]! >= threshold;
    if (isHarmful(it)) {
      harmful++;
      if (hit) tp++;
    } else if (hit) fp++;
  });
  return { threshold, oofRecall: harmful ? tp / harmful : 0, oofFpr: benign.length ? fp / benign.length : 0 };
}

export interface GatedWeights {
  /** category heads p(c | harmful): row-major [D, C] and [C] */
  weights: Float32Array;
  bias: Float32Array;
  /** the gate p(harmful): [D, 1] and [1] */
  gateWeights: Float32Array;
  gateBias: Float32Array;
}

/**
 * The model: a gate g(x) = sigmoid(x·Wg + bg) ≈ p(harmful), fit on every item (harmful vs
 * benign), and category heads h_c(x) = sigmoid(x·W_c + b_c) ≈ p(c | harmful), fit on the harmful
 * items only; score_c = g · h_c / max_c' h_c'. The most likely category scores exactly g, the
 * others in proportion, so "any category ≥ t" is "g ≥ t" and a flagged text always names at
 * least one category.
 */
export function fitGated(X: readonly SparseFeatures[], items: readonly LabelledItem[], categories: readonly Category[], cfg: TrainConfig): GatedWeights & { gateLoss: number; categoryLoss: number } {
  const D = cfg.featurizer.dim;
  const gateY = Uint8Array.from(items.map((it) => (isHarmful(it) ? 1 : 0)));
  const gate = fitLinear(X, gateY, 1, D, cfg);
  const harmfulIdx = items.map((it, i) => (isHarmful(it) ? i : -1)).filter((i) => i >= 0);
  const heads = fitLinear(harmfulIdx.map((i) => X[i]!), labelMatrix(harmfulIdx.map((i) => items[i]!), categories), categories.length, D, cfg);
  return { weights: heads.weights, bias: heads.bias, gateWeights: gate.weights, gateBias: gate.bias, gateLoss: gate.finalLoss, categoryLoss: heads.finalLoss };
}

/** The gated model's scores for one text (kernels/moderation/linear.ts). */
export function predictGated(x: SparseFeatures, w: GatedWeights): Float64Array {
  return linearScores(x, { W: w.weights, b: w.bias, Wg: w.gateWeights, bg: w.gateBias });
}

export interface TrainResult extends GatedWeights {
  thresholds: CategoryMap<number>;
  choice: ThresholdChoice;
  oofScores: CategoryMap<number>[];
  categories: Category[];
  gateLoss: number;
  categoryLoss: number;
}

export function train(items: readonly LabelledItem[], cfg: TrainConfig, log: (s: string) => void = () => {}): TrainResult {
  const categories = [...CATEGORIES];
  const C = categories.length;
  const X = items.map((it) => featurizeSparse(it.text, cfg.featurizer));
  const folds = assignFolds(items, cfg.folds, cfg.seed);
  const oofScores: CategoryMap<number>[] = new Array(items.length);
  for (let f = 0; f < cfg.folds; f++) {
    const trainIdx: number[] = [], testIdx: number[] = [];
    folds.forEach((k, i) => (k === f ? testIdx : trainIdx).push(i));
    const w = fitGated(trainIdx.map((i) => X[i]!), trainIdx.map((i) => items[i]!), categories, cfg);
    for (const i of testIdx) {
      const p = predictGated(X[i]!, w);
      oofScores[i] = categoryMap((_c, j) => p[j]!);
    }
    log(`fold ${f + 1}/${cfg.folds}: trained on ${trainIdx.length}, scored ${testIdx.length} (gate loss ${w.gateLoss.toFixed(4)}, category loss ${w.categoryLoss.toFixed(4)})`);
  }
  const choice = chooseThreshold(items, oofScores, cfg.targetFpr);
  log(`threshold ${choice.threshold.toFixed(4)}: out-of-fold recall ${choice.oofRecall.toFixed(3)}, FPR ${choice.oofFpr.toFixed(3)}`);
  const full = fitGated(X, items, categories, cfg);
  log(`final model on all ${items.length} items: gate loss ${full.gateLoss.toFixed(4)}, category loss ${full.categoryLoss.toFixed(4)}`);
  return { ...full, thresholds: categoryMap(() => choice.threshold), choice, oofScores, categories };
}
