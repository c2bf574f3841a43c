/**
 * The benchmark prompt: token ids shared by our backends and the llama.cpp peer.
 *
 * `petrel bench` (scripts/cli/bench.ts) builds its prompt with this same formula; the peer gets the
 * ids from a file written here. Keep the two in step (or give `petrel bench` a --prompt-ids flag).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A fixed pseudo-random prompt that avoids the control tokens at the start of every vocabulary. */
export function benchPromptIds(nPrompt: number, nVocab: number): number[] {
  return Array.from({ length: nPrompt }, (_, i) => 3 + ((i * 7919) % (nVocab - 3)));
}

/** Writes the ids as a JSON array to `<dir>/prompt-<nVocab>-<nPrompt>.json` and returns the path. */
export function writePromptIds(dir: string, nPrompt: number, nVocab: number): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `prompt-${nVocab}-${nPrompt}.json`);
  writeFileSync(path, JSON.stringify(benchPromptIds(nPrompt, nVocab)) + "\n");
  return path;
}
