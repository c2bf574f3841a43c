// Paged KV-caches (KVCacheShape.paged) and the ShardDO's pool of them: a paged cache allocates
// KV_PAGE positions at a time, computes exactly what a full cache does, and the pool's budget
// counts pages, evicting idle sessions least recently used first.
import { afterAll, describe, expect, it } from "vitest";
import { ShardKvPool } from "../durable-objects/shard-kv.ts";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType } from "../kernels/gguf/types.ts";
import { KV_PAGE, kvCacheShapeBytes, kvCapacity, type Backend, type KVCache } from "../kernels/model/backend.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { loadModel, type Model } from "../kernels/model/model.ts";
import { createWasmBackend, type WasmBackend } from "../kernels/wasm/backend.ts";
import { synthesize } from "../scripts/lib/synth.ts";

const gguf = parseGGUF(synthesize({ arch: "llama", nEmbd: 64, nLayer: 2, nHead: 8, nHeadKv: 2, nFf: 96, type: GGMLType.Q8_0, vocab: 300, seed: 11, nCtx: 96 }));
const prompt = Array.from({ length: 2 * KV_PAGE + 3 }, (_, i) => 3 + ((i * 37) % 290));
const wasm = await createWasmBackend();
afterAll(() => wasm.close());

const backends: [string, () => Backend | WasmBackend][] = [["js", createJsBackend], ["wasm", () => wasm]];

describe.each(backends)("paged KV-cache (%s backend)", (_, backend) => {
  const model: Model = loadModel(gguf, backend());
  const pageBytes = kvCacheShapeBytes(model.createCache({ nCtx: 96 }).shape, KV_PAGE);

  it("holds only the pages its positions use, and grows a page at a time", () => {
    const cache = model.createCache({ nCtx: 96, paged: true });
    expect(cache.bytes).toBe(0);
    model.forward(cache, prompt.slice(0, KV_PAGE - 1));
    expect(cache.bytes).toBe(pageBytes);
    model.forward(cache, prompt.slice(KV_PAGE - 1, KV_PAGE + 1));
    expect(cache.bytes).toBe(2 * pageBytes);
    expect(model.createCache({ nCtx: 96 }).bytes).toBe(6 * pageBytes);
  });

  it("gives the same logits as a full cache across page boundaries, after truncation and when copied", () => {
    const full = model.createCache({ nCtx: 96 });
    const paged = model.createCache({ nCtx: 96, paged: true });
    // Prefill across two page boundaries, then decode steps that cross another one.
    const a = model.forward(full, prompt, { allLogits: true });
    const b = model.forward(paged, prompt, { allLogits: true });
    expect(b).toEqual(a);
    for (let t = 0; t < KV_PAGE; t++) expect(model.forward(paged, [t + 5])).toEqual(model.forward(full, [t + 5]));
    full.truncate(KV_PAGE + 1);
    paged.truncate(KV_PAGE + 1);
    expect(model.forward(paged, [42, 43])).toEqual(model.forward(full, [42, 43]));
    const copy: KVCache = model.createCache({ nCtx: 96, paged: true });
    paged.copyPrefixTo(copy, KV_PAGE + 2);
    full.truncate(KV_PAGE + 2);
    expect(copy.bytes).toBe(2 * pageBytes);
    expect(model.forward(copy, [7])).toEqual(model.forward(full, [7]));
  });

  it("refuses to grow past its context", () => {
    const cache = model.createCache({ nCtx: 20, paged: true });
    model.forward(cache, prompt.slice(0, 20));
    expect(() => model.forward(cache, [1])).toThrow(/context/);
  });
});

describe("ShardKvPool", () => {
  const model = loadModel(gguf, createJsBackend());
  const shape = model.createCache({ nCtx: 96, paged: true }).shape;
  const pageBytes = kvCacheShapeBytes(shape, KV_PAGE);
  const pool = (pages: number) =>
    new ShardKvPool(pages * pageBytes, () => model.createCache({ nCtx: 96, paged: true }), (n) => kvCacheShapeBytes(shape, kvCapacity(shape, n)));

  it("counts pages, so short sessions share a budget that full contexts would not", () => {
    const p = pool(6); // one full context (96 positions) is 6 pages
    for (const s of ["a", "b", "c"]) {
      expect(p.pin(s, 2 * KV_PAGE)).toBeDefined();
      p.unpin(s);
    }
    expect(p.sessions).toBe(3);
    expect(p.bytes).toBe(6 * pageBytes);
    expect(p.peakBytes).toBe(6 * pageBytes);
    expect(p.evictions).toBe(0);
  });

  it("evicts idle sessions least recently used first, never a pinned one", () => {
    const p = pool(4);
    p.pin("old", KV_PAGE);
    p.unpin("old");
    p.pin("busy", KV_PAGE);
    p.pin("recent", KV_PAGE);
    p.unpin("recent");
    // Growing "busy" by two pages needs room: "old" goes first, then "recent" would be next.
    expect(p.pin("busy", 3 * KV_PAGE)).toBeDefined();
    expect(p.has("old")).toBe(false);
    expect(p.has("recent")).toBe(true);
    expect(p.evictions).toBe(1);
    // Everything else is pinned now: a new session cannot get a page.
    p.pin("recent", KV_PAGE);
    expect(p.canPin("new", 1)).toBe(false);
    expect(p.pin("new", 1)).toBeUndefined();
    p.unpin("recent");
    expect(p.canPin("new", 1)).toBe(true);
    p.drop("busy"); // pinned: kept
    expect(p.has("busy")).toBe(true);
  });
});
