import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType } from "../kernels/gguf/types.ts";
import { REFERENCE_DIR, referenceFiles } from "./helpers/parity.ts";
import { petrel } from "./helpers/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "petrel-cli-"));
const q8 = join(REFERENCE_DIR, "llama-Q8_0.gguf");
const reference = referenceFiles().find((f) => f.model === "llama-Q8_0.gguf")!;

function json(r: { status: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

describe("petrel generate", () => {
  it("greedy from token ids returns the reference tokens and their text", () => {
    const run = reference.runs[1]!;
    const out = json(petrel("generate", "--model", q8, "--tokens", run.prompt.join(","), "--n", "8", "--json"));
    expect(out.tokens).toEqual(run.tokens_f64!.slice(0, 8));
    expect(typeof out.text).toBe("string");
  });

  it("--force feeds the given ids and --logits-out writes one row per step", () => {
    const run = reference.runs[0]!;
    const logits = join(dir, "logits.f32");
    const force = run.tokens.slice(0, 5);
    const out = json(petrel("generate", "--model", q8, "--tokens", run.prompt.join(","), "--n", "5", "--force", force.join(","), "--logits-out", logits, "--json"));
    expect(out.tokens).toEqual(force);
    const rows = new Float32Array(readFileSync(logits).buffer.slice(0));
    expect(rows.length).toBe(5 * 512);
    // Row 0 is the logits after the prompt: within the F64 reference's tolerance.
    const std = run.std_steps[0]!;
    for (let i = 0; i < 512; i++) expect(Math.abs(rows[i]! - run.logits0_f64![i]!)).toBeLessThan(1e-2 * std);
  });

  it("a seed makes sampling reproducible", () => {
    const args = ["generate", "--model", q8, "--prompt", "hello", "--n", "12", "--temperature", "1.5", "--top-k", "40", "--json"];
    const a = json(petrel(...args, "--seed", "3"));
    const b = json(petrel(...args, "--seed", "3"));
    const c = json(petrel(...args, "--seed", "4"));
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).not.toEqual(c.tokens);
  });

  it("bad input: a clear message on stderr and exit 1", () => {
    const cases: [string[], RegExp][] = [
      [["--model", join(dir, "nope.gguf"), "--tokens", "1"], /no such file/],
      [["--model", join(REFERENCE_DIR, "llama-Q8_0.json"), "--tokens", "1"], /not a GGUF file/],
      [["--model", q8, "--tokens", "1,99999"], /outside the vocabulary/],
      [["--model", q8, "--tokens", "1,x"], /not a token id/],
      [["--model", q8], /exactly one of --prompt or --tokens/],
      [["--model", q8, "--tokens", "1", "--backend", "cuda"], /--backend must be/],
      [["--model", q8, "--tokens", "1", "--n", "-3"], /--n must be ≥ 0/],
      [["--model", q8, "--tokens", "1", "--top-p", "2"], /--top-p must be ≤ 1/],
      [["--model", q8, "--tokens", "1", "--bogus", "1"], /unknown option --bogus/],
    ];
    for (const [args, message] of cases) {
      const r = petrel("generate", ...args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    }
  });
});

describe("petrel synth", () => {
  const spec = ["--arch", "llama", "--embd", "256", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ff", "512", "--vocab", "400"];

  it("writes a deterministic model of the requested shape and type that generates", () => {
    const a = join(dir, "a.gguf");
    const b = join(dir, "b.gguf");
    const c = join(dir, "c.gguf");
    expect(petrel("synth", "--out", a, ...spec, "--type", "q4_k", "--seed", "5").status).toBe(0);
    expect(petrel("synth", "--out", b, ...spec, "--type", "q4_k", "--seed", "5").status).toBe(0);
    expect(petrel("synth", "--out", c, ...spec, "--type", "q4_k", "--seed", "6").status).toBe(0);
    expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
    expect(Buffer.compare(readFileSync(a), readFileSync(c))).not.toBe(0);
    const file = parseGGUF(new Uint8Array(readFileSync(a)));
    expect(file.tensors.find((t) => t.name === "blk.0.ffn_up.weight")!.type).toBe(GGMLType.Q4_K);
    expect(file.metadata.get("llama.attention.head_count_kv")).toBe(2);
    const out = json(petrel("generate", "--model", a, "--prompt", "abc", "--n", "4", "--json"));
    expect(out.tokens).toHaveLength(4);
  });

  it("copies a real vocabulary and builds a qwen2 model with biases", () => {
    const out = join(dir, "qwen.gguf");
    const vocab = new URL("./fixtures/reference/llama-F32.gguf", import.meta.url).pathname;
    expect(petrel("synth", "--out", out, "--arch", "qwen2", "--embd", "64", "--layers", "1", "--heads", "4", "--kv-heads", "2", "--ff", "128", "--vocab-from", vocab, "--type", "q8_0", "--seed", "1").status).toBe(0);
    const file = parseGGUF(new Uint8Array(readFileSync(out)));
    expect(file.metadata.get("tokenizer.ggml.tokens")).toHaveLength(512);
    expect(file.tensors.some((t) => t.name === "blk.0.attn_q.bias")).toBe(true);
  });

  it("refuses impossible shapes", () => {
    expect(petrel("synth", "--out", join(dir, "x.gguf"), ...spec, "--heads", "3", "--type", "q8_0").stderr).toMatch(/multiple of --heads/);
    expect(petrel("synth", "--out", join(dir, "x.gguf"), ...spec, "--type", "q9_9").stderr).toMatch(/unknown tensor type/);
  });
});

describe("petrel bench", () => {
  it("prints prompt and decode tokens/s and peak RSS as JSON", () => {
    const out = json(petrel("bench", "--model", q8, "--prompt", "16", "--gen", "4", "--json"));
    expect(out.pp_tok_s).toBeGreaterThan(0);
    expect(out.tg_tok_s).toBeGreaterThan(0);
    expect(out.peak_rss_mb).toBeGreaterThan(10);
  });
});
