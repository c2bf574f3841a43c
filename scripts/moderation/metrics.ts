/** Evaluation of moderation scores against labelled items ("harmful" = any category). */
import { CATEGORIES, type Category, type CategoryMap } from "../../kernels/moderation/taxonomy.ts";
import { type LabelledItem, isHarmful } from "./dataset.ts";

export interface BinaryMetrics {
  items: number;
  harmful: number;
  benign: number;
  hardNegatives: number;
  truePositives: number;
  falsePositives: number;
  /** flagged harmful / harmful */
  recall: number;
  /** flagged benign / benign */
  falsePositiveRate: number;
  /** flagged hard negatives / hard negatives */
  hardNegativeFpr: number;
  precision: number;
  /** per category: harmful items carrying that label that were flagged (any category) */
  recallByCategory: Partial<Record<Category, { n: number; flagged: number; recall: number }>>;
  /** per category: items carrying that label whose own category crossed its threshold */
  exactCategoryRecall: Partial<Record<Category, number>>;
}

export function flaggedBy(scores: CategoryMap<number>, thresholds: CategoryMap<number>): Category[] {
  return CATEGORIES.filter((c) => scores[c] >= thresholds[c]);
}

export function evaluate(items: readonly LabelledItem[], scores: readonly CategoryMap<number>[], thresholds: CategoryMap<number>): BinaryMetrics {
  let harmful = 0, benign = 0, tp = 0, fp = 0, hard = 0, hardFp = 0;
  const byCat: BinaryMetrics["recallByCategory"] = {};
  const exactHits: Partial<Record<Category, number>> = {};
  items.forEach((item, i) => {
    const flagged = flaggedBy(scores[i]!, thresholds);
    const hit = flagged.length > 0;
    if (isHarmful(item)) {
      harmful++;
      if (hit) tp++;
      for (const c of item.labels) {
        const e = (byCat[c] ??= { n: 0, flagged: 0, recall: 0 });
        e.n++;
        if (hit) e.flagged++;
        if (flagged.includes(c)) exactHits[c] = (exactHits[c] ?? 0) + 1;
      }
    } else {
      benign++;
      if (hit) fp++;
      if (item.tags.includes("hard-negative")) {
        hard++;
        if (hit) hardFp++;
      }
    }
  });
  const exactCategoryRecall: BinaryMetrics["exactCategoryRecall"] = {};
  for (const [c, e] of Object.entries(byCat) as [Category, { n: number; flagged: number; recall: number }][]) {
    e.recall = e.flagged / e.n;
    exactCategoryRecall[c] = (exactHits[c] ?? 0) / e.n;
  }
  return {
    items: items.length,
    harmful,
    benign,
    hardNegatives: hard,
    truePositives: tp,
    falsePositives: fp,
    recall: harmful ? tp / harmful : 0,
    falsePositiveRate: benign ? fp / benign : 0,
    hardNegativeFpr: hard ? hardFp / hard : 0,
    precision: tp + fp ? tp / (tp + fp) : 0,
    recallByCategory: byCat,
    exactCategoryRecall,
  };
}
