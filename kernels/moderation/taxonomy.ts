/**
 * OpenAI's moderation taxonomy (the 13 categories of `omni-moderation-latest`), in the fixed
 * order used by our classifier's output tensor and by every score vector in this module.
 */
export const CATEGORIES = [
  "harassment",
  "harassment/threatening",
  "hate",
  "hate/threatening",
  "illicit",
  "illicit/violent",
  "self-harm",
  "self-harm/intent",
  "self-harm/instructions",
  "sexual",
  "sexual/minors",
  "violence",
  "violence/graphic",
] as const;

export type Category = (typeof CATEGORIES)[number];

export type CategoryMap<T> = Record<Category, T>;

const CATEGORY_SET: ReadonlySet<string> = new Set(CATEGORIES);

export function isCategory(s: string): s is Category {
  return CATEGORY_SET.has(s);
}

/** The parent of a sub-category ("violence/graphic" → "violence"); a top-level category is its own parent. */
export function parentCategory(c: Category): Category {
  const slash = c.indexOf("/");
  return (slash < 0 ? c : c.slice(0, slash)) as Category;
}

/** A label set closed under "sub-category implies its parent" (as OpenAI's results are). */
export function closeLabels(labels: Iterable<Category>): Set<Category> {
  const out = new Set<Category>();
  for (const l of labels) {
    out.add(l);
    out.add(parentCategory(l));
  }
  return out;
}

export function categoryMap<T>(f: (c: Category, i: number) => T): CategoryMap<T> {
  const out = {} as CategoryMap<T>;
  CATEGORIES.forEach((c, i) => {
    out[c] = f(c, i);
  });
  return out;
}

/** Input types OpenAI reports per category (`category_applied_input_types`); we moderate text only. */
export const IMAGE_CAPABLE: ReadonlySet<Category> = new Set<Category>([
  "self-harm",
  "self-harm/intent",
  "self-harm/instructions",
  "sexual",
  "violence",
  "violence/graphic",
]);
