import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { argmax } from "../kernels/model/generate.ts";
import { loadModel } from "../kernels/model/model.ts";
import { spawnOrigin } from "../scripts/origin/spawn.ts";
import { petrel } from "./helpers/cli.ts";
import { REFERENCE_DIR, checkRun, referenceFiles } from "./helpers/parity.ts";

// `--backend webgpu` in the petrel CLI and the Node origin, run as a user runs them, on whatever
// adapter Dawn finds first (in CI: Mesa's lavapipe, .ci/webgpu-packages.txt).
const dir = mkdtempSync(join(tmpdir(), "petrel-webgpu-cli-"));
const MODEL = "llama-Q4_0.gguf";
const file = join(REFERENCE_DIR, MODEL);
const reference = referenceFiles().find((f) => f.model === MODEL)!;

function json(r: { status: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe("petrel generate --backend webgpu", () => {
  it("meets the fixture rule through the CLI: --force with --logits-out, then greedy", () => {
    const run = reference.runs[1]!;
    const steps = run.tokens.length;
    const logits = join(dir, "forced.f32");
    const common = ["generate", "--model", file, "--tokens", run.prompt.join(","), "--n", String(steps), "--backend", "webgpu", "--json"];
    const forced = json(petrel(...common, "--force", run.tokens.join(","), "--logits-out", logits));
    expect(forced.tokens).toEqual(run.tokens);
    const rows = new Float32Array(readFileSync(logits).buffer.slice(0));
    const nVocab = run.logits0.length;
    expect(rows.length).toBe(steps * nVocab);
    const forcedRows = Array.from({ length: steps }, (_, s) => rows.subarray(s * nVocab, (s + 1) * nVocab));
    const greedy = json(petrel(...common)).tokens as number[];
    // Float activations: the float64 reference at 1e-2·std (fixtures README).
    expect(checkRun(run, { forcedRows, greedy }, "f64", 1e-2)).toBeNull();
  });

  it("without an adapter fails with a message naming every adapter tried", () => {
    // Point Mesa's Vulkan loader and EGL at nothing: what a machine without drivers looks like.
    const hidden = { VK_DRIVER_FILES: "/nonexistent.json", VK_ICD_FILENAMES: "/nonexistent.json", __EGL_VENDOR_LIBRARY_FILENAMES: "/nonexistent.json" };
    const petrelBin = new URL("../scripts/petrel", import.meta.url).pathname;
    const r = spawnSync(petrelBin, ["generate", "--model", file, "--tokens", "1", "--n", "2", "--backend", "webgpu"], { encoding: "utf8", env: { ...process.env, ...hidden } });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/petrel generate: --backend webgpu: no usable WebGPU adapter; tried:\n {2}Dawn backend=default featureLevel=core: no adapter/);
    expect(r.stderr).toMatch(/Dawn backend=opengl featureLevel=compatibility: no adapter/);
  });
});

it("petrel bench --backend webgpu --json reports speeds, the adapter, and the reference backend's greedy ids", () => {
  const out = json(petrel("bench", "--model", file, "--backend", "webgpu", "--prompt", "20", "--gen", "6", "--json"));
  expect(out).toMatchObject({ backend: "webgpu", prompt: 20, gen: 6 });
  for (const field of ["pp_tok_s", "tg_tok_s", "peak_rss_mb"]) expect(out[field]).toBeGreaterThan(0);
  expect(out.adapter).toMatch(/^Dawn backend=/);
  expect(typeof out.software_adapter).toBe("boolean");

  const model = loadModel(parseGGUF(new Uint8Array(readFileSync(file))), createJsBackend());
  const cache = model.createCache({ nCtx: 32 });
  const prompt = Array.from({ length: 20 }, (_, i) => 3 + ((i * 7919) % (model.config.nVocab - 3)));
  let logits = model.forward(cache, prompt);
  const tokens: number[] = [];
  for (let i = 0; i < 6; i++) {
    tokens.push(argmax(logits));
    logits = model.forward(cache, [tokens.at(-1)!]);
  }
  expect(out.tokens).toEqual(tokens);
});

it("the Node origin with --backend webgpu answers a completion with run.c's tokens", async () => {
  // stories260K: every backend must give llama2.c run.c's greedy ids (fixtures README).
  const runc = JSON.parse(readFileSync(join(REFERENCE_DIR, "stories260K.runc.json"), "utf8")) as { runs: { prompt: number[]; tokens: number[] }[] };
  const { prompt, tokens } = runc.runs[0]!;
  const origin = await spawnOrigin(["--model", join(REFERENCE_DIR, "stories260K.gguf"), "--backend", "webgpu"]);
  try {
    const client = new OpenAI({ baseURL: `${origin.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const body = { model: "stories260K", prompt, max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true };
    const res = await client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming);
    expect((res.choices[0] as OpenAI.CompletionChoice & { token_ids?: number[] }).token_ids).toEqual(tokens.slice(0, 12));
    const health = (await (await fetch(`${origin.url}/health`)).json()) as { backend: string };
    expect(health.backend).toMatch(/^webgpu \(Dawn backend=/);
  } finally {
    await origin.stop();
  }
});
