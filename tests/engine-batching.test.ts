/**
 * The serving engine on a real fixture model (tests/fixtures/reference/llama-Q8_0.gguf, the TS
 * reference backend): batched outputs equal each request run alone, token for token; each
 * batched step reads every weight once (counted by MeteredBackend around the real js backend);
 * requests join and leave mid-flight; fairness bound; per-request sampling and stop strings.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { Engine, type EngineOptions, type StepInfo } from "../kernels/engine/engine.ts";
import { MeteredBackend, type WeightTraffic } from "../kernels/engine/metered-backend.ts";
import type { GenerationResult } from "../kernels/engine/types.ts";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { generate } from "../kernels/model/generate.ts";
import { loadModel, type Model } from "../kernels/model/model.ts";
import { Sampler } from "../kernels/sampling/index.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";

const DIR = new URL("./fixtures/reference/", import.meta.url).pathname;
const reference = JSON.parse(readFileSync(`${DIR}llama-Q8_0.json`, "utf8")) as { runs: { prompt: number[]; tokens_f64: number[] }[] };
const run1 = reference.runs[1]!;

let model: Model;
let backend: MeteredBackend;
let tokenizer: Tokenizer;
/** The traffic of one single-sequence forward step: every weight matrix read once. */
let oneRead: WeightTraffic;

beforeAll(() => {
  const file = parseGGUF(new Uint8Array(readFileSync(`${DIR}llama-Q8_0.gguf`)));
  backend = new MeteredBackend(createJsBackend());
  model = loadModel(file, backend);
  tokenizer = Tokenizer.fromMetadata(file.metadata);
  const before = backend.snapshot();
  model.forward(model.createCache({ nCtx: 4 }), [1]);
  const after = backend.snapshot();
  oneRead = { matmulCalls: after.matmulCalls - before.matmulCalls, weightBytes: after.weightBytes - before.weightBytes, tokenRows: 1 };
});

/** Greedy continuation of one prompt run alone with the plain token loop (no engine). */
function alone(prompt: number[], maxTokens: number): number[] {
  const cache = model.createCache({ nCtx: prompt.length + maxTokens });
  return [...generate(model, cache, { prompt, maxTokens })];
}

/** Per-step weight traffic, recorded by the engine's onStep hook. */
function trafficRecorder() {
  const steps: { info: StepInfo; traffic: WeightTraffic }[] = [];
  let last = backend.snapshot();
  const onStep = (info: StepInfo) => {
    const now = backend.snapshot();
    steps.push({ info, traffic: { matmulCalls: now.matmulCalls - last.matmulCalls, weightBytes: now.weightBytes - last.weightBytes, tokenRows: now.tokenRows - last.tokenRows } });
    last = now;
  };
  return { steps, onStep, reset: () => (last = backend.snapshot()) };
}

const greedy = { temperature: 0 };

async function collect(handle: AsyncIterable<{ type: string; tokens?: number[]; text?: string }>): Promise<{ tokens: number[]; text: string; deltas: number }> {
  const out = { tokens: [] as number[], text: "", deltas: 0 };
  for await (const ev of handle) {
    if (ev.type !== "delta") continue;
    out.deltas++;
    out.tokens.push(...ev.tokens!);
    out.text += ev.text!;
  }
  return out;
}

describe("engine: continuous batching on the fixture model", () => {
  it("gives every request, batched with others that join and leave mid-flight, the tokens it gets alone", async () => {
    const rec = trafficRecorder();
    const engine = new Engine(model, { tokenizer, maxRunning: 4, tokenBudget: 24, prefillChunk: 8, onStep: rec.onStep });
    const requests = [
      { prompt: run1.prompt, maxTokens: 32 },
      { prompt: run1.prompt.slice(0, 17), maxTokens: 14 },
      { prompt: [1, 300, 301], maxTokens: 6 },
      { prompt: [1], maxTokens: 12 },
    ];
    rec.reset();
    // Two start together; the other two join once the first has streamed three tokens.
    const first = [0, 1].map((i) => engine.submit({ ...requests[i]!, sampling: greedy, ignoreEos: true }));
    const later: ReturnType<Engine["submit"]>[] = [];
    const streamed: number[] = [];
    for await (const ev of first[0]!) {
      if (ev.type !== "delta") continue;
      streamed.push(...ev.tokens);
      if (streamed.length === 3) for (const i of [2, 3]) later.push(engine.submit({ ...requests[i]!, sampling: greedy, ignoreEos: true }));
    }
    const results = await Promise.all([...first, ...later].map((h) => h.result));
    results.forEach((r, i) => expect(r.tokens, `request ${i}`).toEqual(alone(requests[i]!.prompt, requests[i]!.maxTokens)));
    expect(streamed).toEqual(results[0]!.tokens);
    // The 40-token prompt gets llama.cpp's float64 reference continuation (all 32 steps: the js
    // backend is within 1.6e-5·std of it and every gap of this run is ≥ 0.012·std).
    expect(results[0]!.tokens).toEqual(run1.tokens_f64);
    expect(results.every((r) => r.finish === "length")).toBe(true);

    const stats = engine.stats();
    expect(stats.maxSeqsPerCall).toBe(4);
    expect(stats.batchedSteps).toBeGreaterThan(10);
    expect(stats.forwardCalls).toBe(stats.steps);
    expect(results[2]!.maxBatch).toBe(4);
    // Each step, however many sequences it held, read every weight exactly once.
    for (const { info, traffic } of rec.steps) {
      expect(traffic.matmulCalls, `step ${info.step}`).toBe(oneRead.matmulCalls);
      expect(traffic.weightBytes, `step ${info.step}`).toBe(oneRead.weightBytes);
    }
    const multi = rec.steps.filter((s) => s.info.items.length > 1);
    expect(multi.length).toBe(stats.batchedSteps);
    // Chunked prefill: the 17-token prompt ran as 8+8+1 next to the decodes of request 0.
    expect(rec.steps.flatMap((s) => s.info.items.filter((i) => i.id === "seq-1").map((i) => i.numTokens)).slice(0, 3)).toEqual([8, 8, 1]);
    expect(stats.kvBytesLive).toBe(0);
    expect(stats.running + stats.waiting).toBe(0);
  });

  it("without batching reads the weights once per sequence per step, and gives the same tokens", async () => {
    const rec = trafficRecorder();
    const engine = new Engine(model, { tokenizer, batching: false, maxRunning: 3, onStep: rec.onStep });
    const prompts = [run1.prompt.slice(0, 9), [1, 77], [1, 5, 6, 7, 8]];
    rec.reset();
    const results = await Promise.all(prompts.map((prompt) => engine.submit({ prompt, maxTokens: 5, sampling: greedy, ignoreEos: true }).result));
    results.forEach((r, i) => expect(r.tokens).toEqual(alone(prompts[i]!, 5)));
    for (const { info, traffic } of rec.steps) {
      expect(info.forwardCalls).toBe(info.items.length);
      expect(traffic.matmulCalls).toBe(oneRead.matmulCalls * info.items.length);
      expect(traffic.weightBytes).toBe(oneRead.weightBytes * info.items.length);
    }
    expect(rec.steps.some((s) => s.info.items.length === 3)).toBe(true);
    expect(engine.stats().batchedSteps).toBe(0);
    expect(engine.stats().maxSeqsPerCall).toBe(1);
    expect(results.every((r) => r.maxBatch === 1)).toBe(true);
  });

  it("keeps every running sequence within the fairness bound when more run than one step holds", async () => {
    const opts: EngineOptions = { tokenizer, maxRunning: 5, maxBatchSeqs: 2, tokenBudget: 6, prefillChunk: 6, starvationSteps: 2 };
    const engine = new Engine(model, opts);
    const prompts = [run1.prompt, run1.prompt.slice(3, 30), [1, 9], [1, 400, 401, 402], run1.prompt.slice(0, 12), [1]];
    const results: GenerationResult[] = await Promise.all(prompts.map((prompt, i) => engine.submit({ prompt, maxTokens: 4 + i, sampling: greedy, ignoreEos: true }).result));
    const stats = engine.stats();
    expect(stats.maxWaitBound).toBe(2 + 5 - 1);
    expect(stats.maxWaitObserved).toBeGreaterThan(0); // sequences really did wait their turn
    for (const r of results) expect(r.maxWaitSteps).toBeLessThanOrEqual(stats.maxWaitBound);
    expect(stats.maxWaitObserved).toBeLessThanOrEqual(stats.maxWaitBound);
    results.forEach((r, i) => expect(r.tokens).toEqual(alone(prompts[i]!, 4 + i)));
    expect(stats.maxSeqsPerCall).toBe(2);
  });

  it("samples each request with its own parameters and seed, batched or not", async () => {
    const engine = new Engine(model, { tokenizer, maxRunning: 3 });
    const sampled = { temperature: 0.9, topK: 40, seed: 1234 };
    const batched = await Promise.all([
      engine.submit({ prompt: run1.prompt.slice(0, 10), maxTokens: 10, sampling: sampled, ignoreEos: true }).result,
      engine.submit({ prompt: [1, 2, 3], maxTokens: 10, sampling: greedy, ignoreEos: true }).result,
      engine.submit({ prompt: [1, 44], maxTokens: 10, sampling: { temperature: 1.2, seed: 9 }, ignoreEos: true }).result,
    ]);
    // The same seeded request alone, with the sampler on the plain token loop.
    const sampler = new Sampler(sampled, model.config.nVocab);
    const prompt = run1.prompt.slice(0, 10);
    const cache = model.createCache({ nCtx: 32 });
    const solo = [...generate(model, cache, { prompt, maxTokens: 10, pick: (logits, history) => sampler.sample(logits, history) })];
    expect(batched[0]!.tokens).toEqual(solo);
    expect(batched[0]!.tokens).not.toEqual(alone(prompt, 10)); // it really sampled
    expect(batched[1]!.tokens).toEqual(alone([1, 2, 3], 10));
  });

  it("stops at a stop string (text before it), at end-of-generation, and at max_tokens", async () => {
    const engine = new Engine(model, { tokenizer, maxRunning: 4 });
    const run0 = reference.runs[0]!;
    const full = await engine.submit({ prompt: run0.prompt, maxTokens: 20, sampling: greedy }).result;
    expect(full.tokens).toEqual(run0.tokens_f64.slice(0, 20));
    expect(full.text).toBe(tokenizer.decode(full.tokens));
    expect(full.finish).toBe("length");
    const stop = " t454";
    const cut = full.text.indexOf(stop);
    expect(cut).toBeGreaterThan(0);
    const [stopped, eos] = await Promise.all([
      engine.submit({ prompt: run0.prompt, maxTokens: 20, sampling: greedy, stop: [stop, "never-there"] }),
      engine.submit({ prompt: [1, 7], maxTokens: 20, sampling: { temperature: 0, logitBias: { 2: 100 } } }),
    ].map((h) => collect(h).then(async (c) => ({ ...c, result: await h.result }))));
    expect(stopped!.text).toBe(full.text.slice(0, cut));
    expect(stopped!.result.text).toBe(stopped!.text);
    expect(stopped!.result.finish).toBe("stop");
    expect(stopped!.tokens.length).toBeLessThan(20);
    expect(eos!.result.finish).toBe("stop");
    expect(eos!.tokens).toEqual([2]);
    expect(eos!.text).toBe("");
  });

  it("refuses requests that can never run, with typed errors", () => {
    const engine = new Engine(model, { tokenizer, nCtx: 64 });
    expect(() => engine.submit({ prompt: run1.prompt, maxTokens: 30 })).toThrow(expect.objectContaining({ name: "EngineRequestError", code: "context_length_exceeded" }));
    expect(() => engine.submit({ prompt: [1, 512], maxTokens: 3 })).toThrow(expect.objectContaining({ code: "invalid_prompt" }));
    expect(() => engine.submit({ prompt: [], maxTokens: 3 })).toThrow(expect.objectContaining({ code: "invalid_prompt" }));
    expect(() => engine.submit({ prompt: [1], maxTokens: 0 })).toThrow(expect.objectContaining({ code: "invalid_value", param: "max_tokens" }));
    expect(() => engine.submit({ prompt: [1], maxTokens: 3, sampling: { topP: 0 } })).toThrow(/topP/);
    expect(engine.stats().submitted).toBe(0);
  });
});
