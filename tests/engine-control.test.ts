/**
 * The engine's control paths on the fixture model: cancellation (breaking out of the stream, an
 * AbortSignal, a request still queued) frees the sequence and its KV-cache without disturbing
 * the others; a full queue refuses with a typed overloaded error and a retry-after hint; close()
 * ends everything.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../kernels/engine/engine.ts";
import { EngineClosedError, EngineOverloadedError } from "../kernels/engine/types.ts";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { generate } from "../kernels/model/generate.ts";
import { loadModel, type Model } from "../kernels/model/model.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";

const DIR = new URL("./fixtures/reference/", import.meta.url).pathname;
let model: Model;
let tokenizer: Tokenizer;

beforeAll(() => {
  const file = parseGGUF(new Uint8Array(readFileSync(`${DIR}llama-Q8_0.gguf`)));
  model = loadModel(file, createJsBackend());
  tokenizer = Tokenizer.fromMetadata(file.metadata);
});

const greedy = { temperature: 0 };
const alone = (prompt: number[], maxTokens: number) => [...generate(model, model.createCache({ nCtx: prompt.length + maxTokens }), { prompt, maxTokens })];
const tick = () => new Promise((r) => setTimeout(r, 5));

describe("engine: cancellation, backpressure, shutdown", () => {
  it("stops a sequence whose consumer goes away and frees its cache; the others carry on unchanged", async () => {
    const engine = new Engine(model, { tokenizer, maxRunning: 4 });
    const long = engine.submit({ prompt: [1, 10, 11], maxTokens: 300, sampling: greedy, ignoreEos: true });
    const other = engine.submit({ prompt: [1, 20], maxTokens: 12, sampling: greedy, ignoreEos: true });
    let seen = 0;
    for await (const ev of long) {
      if (ev.type === "delta") seen++;
      if (seen === 3) break; // the client disconnects
    }
    const r = await long.result;
    expect(r.cancelled).toBe(true);
    expect(r.finish).toBeNull();
    expect(r.tokens.length).toBeGreaterThanOrEqual(3);
    expect(r.tokens.length).toBeLessThan(10); // stopped within a step or so, not after 300
    expect((await other.result).tokens).toEqual(alone([1, 20], 12));
    await tick();
    const s = engine.stats();
    expect(s.cancelled).toBe(1);
    expect(s.completed).toBe(1);
    expect(s.running).toBe(0);
    expect(s.kvBytesLive).toBe(0);
    expect(s.generatedTokens).toBeLessThan(12 + 10);
  });

  it("cancels through an AbortSignal, and removes a request that was still queued", async () => {
    const engine = new Engine(model, { tokenizer, maxRunning: 1, maxQueue: 4 });
    const ac = new AbortController();
    const running = engine.submit({ prompt: [1, 3], maxTokens: 300, sampling: greedy, ignoreEos: true, signal: ac.signal });
    const queued = engine.submit({ prompt: [1, 4], maxTokens: 300, sampling: greedy, ignoreEos: true });
    const next = engine.submit({ prompt: [1, 5], maxTokens: 4, sampling: greedy, ignoreEos: true });
    expect(engine.stats().waiting).toBeGreaterThanOrEqual(2);
    queued.cancel();
    const q = await queued.result;
    expect(q).toMatchObject({ cancelled: true, finish: null, tokens: [] });
    for await (const ev of running) {
      if (ev.type === "delta" && ev.tokens.length > 0) {
        ac.abort();
        break;
      }
    }
    expect((await running.result).cancelled).toBe(true);
    expect((await next.result).tokens).toEqual(alone([1, 5], 4));
    await tick();
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, kvBytesLive: 0, cancelled: 2, completed: 1 });
    // An already aborted signal never runs.
    const dead = engine.submit({ prompt: [1], maxTokens: 5, signal: AbortSignal.abort() });
    expect((await dead.result).tokens).toEqual([]);
  });

  it("refuses requests beyond the queue limit with an overloaded error and a retry-after hint", async () => {
    const engine = new Engine(model, { tokenizer, maxRunning: 1, maxQueue: 2 });
    const ask = (i: number) => engine.submit({ prompt: [1, 30 + i], maxTokens: 6, sampling: greedy, ignoreEos: true });
    const accepted = [ask(0)];
    await tick(); // the first is admitted (running); the queue holds what waits
    accepted.push(ask(1), ask(2));
    let caught: unknown;
    try {
      engine.submit({ prompt: [1], maxTokens: 6 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(EngineOverloadedError);
    const err = caught as EngineOverloadedError;
    expect(err.code).toBe("overloaded");
    expect(err.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(err.limit).toBe(2);
    expect(engine.stats().rejected).toBe(1);
    const results = await Promise.all(accepted.map((h) => h.result));
    results.forEach((r, i) => expect(r.tokens).toEqual(alone([1, 30 + i], 6)));
    // FIFO: the second and third waited for the first.
    expect(results[1]!.queuedSteps).toBeGreaterThan(0);
    expect(results[2]!.queuedSteps).toBeGreaterThan(results[1]!.queuedSteps);
    // Room again once the queue drained.
    expect((await engine.submit({ prompt: [1], maxTokens: 2, sampling: greedy }).result).tokens).toHaveLength(2);
  });

  it("close() ends queued and running requests with EngineClosedError and refuses new ones", async () => {
    const engine = new Engine(model, { tokenizer, maxRunning: 1 });
    const a = engine.submit({ prompt: [1, 3], maxTokens: 200, ignoreEos: true });
    const b = engine.submit({ prompt: [1, 3], maxTokens: 200, ignoreEos: true });
    await tick();
    engine.close();
    await expect(a.result).rejects.toBeInstanceOf(EngineClosedError);
    await expect(b.result).rejects.toBeInstanceOf(EngineClosedError);
    await expect((async () => {
      for await (const _ of b) {
        // drain
      }
    })()).rejects.toBeInstanceOf(EngineClosedError);
    expect(() => engine.submit({ prompt: [1], maxTokens: 1 })).toThrow(EngineClosedError);
    expect(engine.stats().kvBytesLive).toBe(0);
  });

  it("collects requests that arrive within the batch window into the first step", async () => {
    const engine = new Engine(model, { tokenizer, batchWindowMs: 30 });
    const a = engine.submit({ prompt: [1, 3], maxTokens: 3, sampling: greedy, ignoreEos: true });
    await new Promise((r) => setTimeout(r, 5));
    const b = engine.submit({ prompt: [1, 4, 5], maxTokens: 3, sampling: greedy, ignoreEos: true });
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect(ra.queuedSteps).toBe(0);
    expect(rb.queuedSteps).toBe(0);
    expect(engine.stats().steps).toBe(3); // prefill+decode of both together, every step
    expect(ra.maxBatch).toBe(2);
  });
});
