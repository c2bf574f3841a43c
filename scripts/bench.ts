/**
 * `npm run bench`: synthesizes (or reuses) the benchmark models in .cache/bench/ and measures each
 * backend on them with `petrel bench`, one process per measurement so peak RSS is per backend.
 * Prints a table, and with --json the rows machine-readably.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const petrel = join(root, "scripts/petrel");
const cacheDir = join(root, ".cache/bench");
const vocab = join(root, "tests/fixtures/vocab/ggml-vocab-llama-spm.gguf");

interface BenchModel {
  name: string;
  synth: string[];
}

// SmolLM2-135M's shape: embd 576, 30 layers, 9 heads, 3 KV heads, ff 1536, separate output.
const SMOLLM2_135M_Q8_0: BenchModel = {
  name: "smollm2-135m-q8_0",
  synth: ["--arch", "llama", "--embd", "576", "--layers", "30", "--heads", "9", "--kv-heads", "3", "--ff", "1536", "--type", "q8_0", "--embd-type", "q8_0", "--output-type", "q8_0", "--seed", "1"],
};

interface Row {
  model: string;
  backend: string;
  pp_tok_s: number;
  tg_tok_s: number;
  peak_rss_mb: number;
}

function ensureModel(m: BenchModel): string {
  const file = join(cacheDir, `${m.name}.gguf`);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    console.error(`synthesizing ${file} …`);
    execFileSync(petrel, ["synth", "--out", file, "--vocab-from", vocab, ...m.synth], { stdio: "inherit" });
  }
  return file;
}

function bench(file: string, backend: string, prompt: number, gen: number): Row & { prompt: number; gen: number } {
  const out = execFileSync(petrel, ["bench", "--model", file, "--backend", backend, "--prompt", String(prompt), "--gen", String(gen), "--json"], { encoding: "utf8" });
  return { model: file, ...JSON.parse(out.trim().split("\n").at(-1)!) };
}

const json = process.argv.includes("--json");
const file = ensureModel(SMOLLM2_135M_Q8_0);
// The reference backend is slow by design; a shorter prompt keeps the run to a minute.
const rows = [bench(file, "js", 32, 16)];
if (json) console.log(JSON.stringify(rows, null, 2));
else {
  console.log("model                     backend  prompt tok/s  decode tok/s  peak RSS MB");
  for (const r of rows) {
    console.log(`${SMOLLM2_135M_Q8_0.name.padEnd(25)} ${r.backend.padEnd(8)} ${r.pp_tok_s.toFixed(2).padStart(12)}  ${r.tg_tok_s.toFixed(2).padStart(12)}  ${r.peak_rss_mb.toFixed(0).padStart(11)}`);
  }
}
