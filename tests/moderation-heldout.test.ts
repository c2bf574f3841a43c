/**
 * The shipped classifier on the held-out set (data/moderation/heldout.jsonl), which training
 * never reads: recall on harmful items ≥ 0.8 at a false-positive rate ≤ 0.1, with the decision
 * threshold stored in the model (chosen by cross-validation on the training set only).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { CATEGORIES } from "../kernels/moderation/taxonomy.ts";
import type { OnnxClassifier } from "../kernels/moderation/classifier.ts";
import { normalizeText } from "../kernels/moderation/features.ts";
import { HELDOUT_PATH, TEST_PATH, TRAIN_PATH, isHarmful, loadJsonl } from "../scripts/moderation/dataset.ts";
import { evaluate } from "../scripts/moderation/metrics.ts";
import { loadShippedClassifier } from "../scripts/moderation/node.ts";

const heldout = loadJsonl(HELDOUT_PATH);
const train = loadJsonl(TRAIN_PATH);
let clf: OnnxClassifier;

beforeAll(async () => {
  clf = await loadShippedClassifier();
});

const words = (s: string) => new Set(normalizeText(s).match(/[\p{L}\p{N}]+/gu) ?? []);
function jaccard(a: Set<string>, b: Set<string>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

describe("the held-out set", () => {
  it("has at least 150 items, both classes, every category, and benign text using violent/sexual words harmlessly", () => {
    expect(heldout.length).toBeGreaterThanOrEqual(150);
    const harmful = heldout.filter(isHarmful);
    expect(harmful.length).toBeGreaterThanOrEqual(50);
    expect(heldout.length - harmful.length).toBeGreaterThanOrEqual(50);
    for (const c of CATEGORIES) expect(heldout.filter((i) => i.labels.has(c)).length, c).toBeGreaterThanOrEqual(5);
    const hard = heldout.filter((i) => i.tags.includes("hard-negative"));
    expect(hard.length).toBeGreaterThanOrEqual(30);
    expect(hard.every((i) => !isHarmful(i))).toBe(true);
    const texts = hard.map((i) => i.text.toLowerCase());
    expect(texts.some((t) => t.includes("kill the process"))).toBe(true);
    expect(texts.some((t) => t.includes("shot killed it"))).toBe(true);
    expect(texts.some((t) => t.includes("breast cancer screening"))).toBe(true);
  });

  it("is kept apart from training: no shared text, no near-duplicate (word Jaccard ≥ 0.7)", () => {
    const trainTexts = new Set(train.map((i) => normalizeText(i.text).trim()));
    const trainWords = train.map((i) => words(i.text));
    for (const item of heldout) {
      expect(trainTexts.has(normalizeText(item.text).trim()), item.text).toBe(false);
      const w = words(item.text);
      const closest = Math.max(...trainWords.map((t) => jaccard(w, t)));
      expect(closest, item.text).toBeLessThan(0.7);
    }
  });
});

describe("the sealed test set", () => {
  // Its metrics are not asserted here: it was evaluated once (data/moderation/README.md), and a
  // floor written after seeing them would be tuning to it.
  const test = loadJsonl(TEST_PATH);

  it("has at least 200 items, both classes, every category and hard negatives", () => {
    expect(test.length).toBeGreaterThanOrEqual(200);
    expect(test.filter(isHarmful).length).toBeGreaterThanOrEqual(100);
    expect(test.filter((i) => !isHarmful(i)).length).toBeGreaterThanOrEqual(100);
    for (const c of CATEGORIES) expect(test.filter((i) => i.labels.has(c)).length, c).toBeGreaterThanOrEqual(8);
    const hard = test.filter((i) => i.tags.includes("hard-negative"));
    expect(hard.length).toBeGreaterThanOrEqual(45);
    expect(hard.every((i) => !isHarmful(i))).toBe(true);
  });

  it("shares no text and no near-duplicate (word Jaccard ≥ 0.7) with training or the held-out set", () => {
    const others = [...train, ...heldout];
    const texts = new Set(others.map((i) => normalizeText(i.text).trim()));
    const otherWords = others.map((i) => words(i.text));
    for (const item of test) {
      expect(texts.has(normalizeText(item.text).trim()), item.text).toBe(false);
      const w = words(item.text);
      expect(Math.max(...otherWords.map((t) => jaccard(w, t))), item.text).toBeLessThan(0.7);
    }
  });
});

describe("held-out metrics of the shipped classifier (onnxruntime-web)", () => {
  it("recall ≥ 0.8 on harmful items at a false-positive rate ≤ 0.1", async () => {
    const scores = await clf.score(heldout.map((i) => i.text));
    const m = evaluate(heldout, scores, clf.info.thresholds);
    console.log(
      `held-out: ${m.items} items (${m.harmful} harmful, ${m.benign} benign, ${m.hardNegatives} hard negatives); ` +
        `threshold ${clf.info.thresholds.violence.toFixed(4)}; recall ${m.recall.toFixed(3)}, FPR ${m.falsePositiveRate.toFixed(3)}, ` +
        `hard-negative FPR ${m.hardNegativeFpr.toFixed(3)}, precision ${m.precision.toFixed(3)}`,
    );
    expect(m.recall).toBeGreaterThanOrEqual(0.8);
    expect(m.falsePositiveRate).toBeLessThanOrEqual(0.1);
    // and not by luck of one category: every parent category is mostly caught
    for (const c of ["harassment", "hate", "self-harm", "sexual", "violence", "illicit"] as const) {
      expect(m.recallByCategory[c]!.recall, c).toBeGreaterThanOrEqual(0.6);
    }
  });

  it("the threshold comes from the model's training metadata, not from this set", () => {
    const training = clf.info.training as { threshold: number; items: number };
    expect(training.items).toBe(train.length);
    for (const c of CATEGORIES) expect(clf.info.thresholds[c]).toBe(training.threshold);
  });
});
