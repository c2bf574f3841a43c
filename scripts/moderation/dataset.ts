/** The labelled moderation sets (data/moderation/*.jsonl): loading and validation. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Category, closeLabels, isCategory } from "../../kernels/moderation/taxonomy.ts";

export interface LabelledItem {
  text: string;
  /** as written in the file (leaf labels); see `labels` for the closure under parents */
  categories: Category[];
  /** closed under "sub-category implies parent" */
  labels: Set<Category>;
  /** e.g. "hard-negative": benign text that uses violent/sexual/drug words harmlessly */
  tags: string[];
  line: number;
}

export const DATA_DIR = fileURLToPath(new URL("../../data/moderation/", import.meta.url));
export const TRAIN_PATH = `${DATA_DIR}train.jsonl`;
export const HELDOUT_PATH = `${DATA_DIR}heldout.jsonl`;
/** Sealed: written blind after the classifier was final, evaluated once (data/moderation/README.md). */
export const TEST_PATH = `${DATA_DIR}test.jsonl`;

export function parseJsonl(source: string, name = "jsonl"): LabelledItem[] {
  const items: LabelledItem[] = [];
  source.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("//")) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${name}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    const o = obj as { text?: unknown; categories?: unknown; tags?: unknown };
    if (typeof o.text !== "string" || o.text.trim() === "") throw new Error(`${name}:${i + 1}: "text" must be a non-empty string`);
    if (!Array.isArray(o.categories)) throw new Error(`${name}:${i + 1}: "categories" must be an array`);
    for (const c of o.categories) {
      if (typeof c !== "string" || !isCategory(c)) throw new Error(`${name}:${i + 1}: unknown category ${JSON.stringify(c)}`);
    }
    const tags = o.tags === undefined ? [] : o.tags;
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === "string")) throw new Error(`${name}:${i + 1}: "tags" must be strings`);
    const categories = o.categories as Category[];
    items.push({ text: o.text, categories, labels: closeLabels(categories), tags: tags as string[], line: i + 1 });
  });
  return items;
}

export function loadJsonl(path: string): LabelledItem[] {
  return parseJsonl(readFileSync(path, "utf8"), path);
}

export const isHarmful = (item: LabelledItem): boolean => item.labels.size > 0;
