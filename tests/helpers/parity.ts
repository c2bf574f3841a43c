/** Loading the reference fixtures from disk (Node only); the rule itself is in parity-rule.ts. */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ReferenceFile } from "./parity-rule.ts";

export * from "./parity-rule.ts";

export const REFERENCE_DIR = new URL("../fixtures/reference/", import.meta.url).pathname;

/** Every reference file (one per fixture model), sorted by model name. */
export function referenceFiles(): ReferenceFile[] {
  return readdirSync(REFERENCE_DIR)
    .filter((f) => f.endsWith(".json") && f !== "manifest.json" && !f.endsWith(".runc.json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(REFERENCE_DIR, f), "utf8")) as ReferenceFile)
    .filter((d) => Array.isArray(d.runs) && typeof d.model === "string");
}

