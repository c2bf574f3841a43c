/**
 * The benchmark models: synthetic GGUF files of real models' shapes, synthesized once into
 * .cache/bench/ with `petrel synth` and reused while their recipe is unchanged.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { readGGUFHeader, type RandomAccessSource } from "../../kernels/gguf/reader.ts";
import { typeName, type GGUFHeader } from "../../kernels/gguf/types.ts";

const execFileAsync = promisify(execFile);

export interface BenchModel {
  /** Name used by --models and in the table. */
  name: string;
  /** Group alias (--models smollm2 selects every SmolLM2 file). */
  group: "smollm2" | "tinyllama";
  description: string;
  /** `petrel synth` flags, less --out and --vocab-from. */
  synth: string[];
  /** Small models run every backend; on big ones the js reference is skipped unless asked for. */
  big: boolean;
  /** The floors for wasm, 1 thread, as ratios to llama.cpp 1 thread. */
  floors?: { pp: number; tg: number };
}

const SMOLLM2_SHAPE = ["--arch", "llama", "--embd", "576", "--layers", "30", "--heads", "9", "--kv-heads", "3", "--ff", "1536"];
const TINYLLAMA_SHAPE = ["--arch", "llama", "--embd", "2048", "--layers", "22", "--heads", "32", "--kv-heads", "4", "--ff", "5632"];

export const MODELS: readonly BenchModel[] = [
  {
    name: "smollm2-q8_0",
    group: "smollm2",
    description: "SmolLM2-135M shape, Q8_0 (embeddings, output Q8_0)",
    synth: [...SMOLLM2_SHAPE, "--type", "q8_0", "--embd-type", "q8_0", "--output-type", "q8_0", "--seed", "1"],
    big: false,
    floors: { pp: 0.25, tg: 0.7 },
  },
  {
    name: "smollm2-q4_0",
    group: "smollm2",
    description: "SmolLM2-135M shape, Q4_0 (embeddings, output Q8_0)",
    synth: [...SMOLLM2_SHAPE, "--type", "q4_0", "--embd-type", "q8_0", "--output-type", "q8_0", "--seed", "1"],
    big: false,
    floors: { pp: 0.25, tg: 0.6 },
  },
  {
    // All tensors in one type ("pure"), so the row measures that type's kernels alone.
    name: "tinyllama-q4_0",
    group: "tinyllama",
    description: "TinyLlama-1.1B shape, Q4_0 everywhere",
    synth: [...TINYLLAMA_SHAPE, "--type", "q4_0", "--embd-type", "q4_0", "--output-type", "q4_0", "--seed", "1"],
    big: true,
  },
  {
    name: "tinyllama-q4_k",
    group: "tinyllama",
    description: "TinyLlama-1.1B shape, Q4_K everywhere",
    synth: [...TINYLLAMA_SHAPE, "--type", "q4_k", "--embd-type", "q4_k", "--output-type", "q4_k", "--seed", "1"],
    big: true,
  },
];

/** Resolves `--models a,b` (names, group aliases, or "all") to models in table order. */
export function selectModels(spec: string | undefined): BenchModel[] {
  if (spec === undefined || spec === "all") return [...MODELS];
  const wanted = new Set<string>();
  for (const raw of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const hits = MODELS.filter((m) => m.name === raw || m.group === raw);
    if (hits.length === 0) throw new Error(`unknown model '${raw}' (known: ${MODELS.map((m) => m.name).join(", ")}, smollm2, tinyllama, all)`);
    for (const m of hits) wanted.add(m.name);
  }
  return MODELS.filter((m) => wanted.has(m.name));
}

export function findVocab(root: string): string {
  for (const p of ["tests/fixtures/vocab/ggml-vocab-llama-spm.gguf", "../shared/fixtures/vocab/ggml-vocab-llama-spm.gguf"]) {
    const full = join(root, p);
    if (existsSync(full)) return full;
  }
  throw new Error("ggml-vocab-llama-spm.gguf not found in tests/fixtures/vocab/ or ../shared/fixtures/vocab/");
}

/**
 * Returns the model's file, synthesizing it when absent or when its recipe (the synth flags and
 * the vocabulary's size) differs from the one recorded next to it. Writes to a temporary name and
 * renames, so an interrupted synth never leaves a truncated model behind.
 */
export async function ensureModel(m: BenchModel, opts: { root: string; cacheDir: string; vocab: string; log: (s: string) => void }): Promise<string> {
  mkdirSync(opts.cacheDir, { recursive: true });
  const file = join(opts.cacheDir, `${m.name}.gguf`);
  const recipeFile = `${file}.recipe.json`;
  const recipe = JSON.stringify({ synth: m.synth, vocab_bytes: statSync(opts.vocab).size });
  if (existsSync(file) && existsSync(recipeFile) && readFileSync(recipeFile, "utf8") === recipe) return file;
  const tmp = `${file}.tmp-${process.pid}`;
  opts.log(`synthesizing ${m.name} (${m.description}) …`);
  const started = performance.now();
  try {
    await execFileAsync(join(opts.root, "scripts/petrel"), ["synth", "--out", tmp, "--vocab-from", opts.vocab, ...m.synth], { maxBuffer: 1 << 20 });
  } catch (e) {
    rmSync(tmp, { force: true });
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`petrel synth failed for ${m.name}: ${stderr || (e as Error).message}`);
  }
  renameSync(tmp, file);
  writeFileSync(recipeFile, recipe);
  opts.log(`  ${file}: ${(statSync(file).size / (1024 * 1024)).toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return file;
}

/** Reads only a GGUF file's header (metadata and tensor table), not its tensor data. */
export async function readHeader(path: string): Promise<GGUFHeader> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    const source: RandomAccessSource = {
      size,
      read: async (offset, length) => {
        const buf = new Uint8Array(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      },
    };
    return await readGGUFHeader(source);
  } finally {
    await fh.close();
  }
}

export interface ModelFacts {
  file_mb: number;
  n_vocab: number;
  n_layer: number;
  kv_dim: number;
  /** Tensor count per GGML type name, e.g. { q8_0: 212, f32: 61 }. */
  tensor_types: Record<string, number>;
}

export async function modelFacts(path: string): Promise<ModelFacts> {
  const h = await readHeader(path);
  const arch = String(h.metadata.get("general.architecture"));
  const num = (key: string) => Number(h.metadata.get(`${arch}.${key}`));
  const tokens = h.metadata.get("tokenizer.ggml.tokens");
  const nHead = num("attention.head_count");
  const nHeadKv = Number(h.metadata.get(`${arch}.attention.head_count_kv`) ?? nHead);
  const types: Record<string, number> = {};
  for (const t of h.tensors) {
    const n = typeName(t.type).toLowerCase();
    types[n] = (types[n] ?? 0) + 1;
  }
  return {
    file_mb: statSync(path).size / (1024 * 1024),
    n_vocab: Array.isArray(tokens) ? tokens.length : 0,
    n_layer: num("block_count"),
    kv_dim: (num("embedding_length") / nHead) * nHeadKv,
    tensor_types: types,
  };
}
