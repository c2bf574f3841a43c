/**
 * Shard plans and multi-file models: `planShards` cuts layer ranges that fit the budget (first
 * shard embeds, last holds the head), gguf-split files written by our writer merge back into the
 * same tensor index and the same logits, layer ranges run stage by stage equal the whole model,
 * and `petrel shard` / `petrel upload --plan` do it from the command line.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planKey, planShards, sequenceKvBytes, type ShardPlan } from "../durable-objects/shard-plan.ts";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { mergeSplits, parseSplitName, splitFileName, splitFileNames, writeSplit } from "../kernels/gguf/split.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { readModelConfig } from "../kernels/model/config.ts";
import { loadModel, Model } from "../kernels/model/model.ts";
import { bucketName, openLocalBucket, uploadModel } from "../scripts/cli/upload.ts";
import { petrel } from "./helpers/cli.ts";

const FIXTURE = "tests/fixtures/reference/llama-Q8_0.gguf";
const QWEN = "tests/fixtures/reference/qwen2-Q8_0.gguf";
const file = parseGGUF(new Uint8Array(readFileSync(FIXTURE)));
const dir = mkdtempSync(join(tmpdir(), "petrel-shard-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("planShards", () => {
  it("cuts contiguous ranges that each fit the budget, embeddings first, head last", () => {
    const budgetBytes = 4 << 20;
    const plan = planShards(file, { budgetBytes, kvBudgetBytes: 512 << 10, nCtx: 128, kvType: "f32" });
    expect(plan.shards.length).toBeGreaterThan(1);
    expect(plan.shards[0]!.first).toBe(0);
    expect(plan.shards.at(-1)!.end).toBe(4);
    for (const [i, s] of plan.shards.entries()) {
      if (i > 0) expect(s.first).toBe(plan.shards[i - 1]!.end);
      expect(s.totalBytes).toBeLessThanOrEqual(budgetBytes);
      expect(s.tensors.includes("token_embd.weight")).toBe(i === 0);
      expect(s.tensors.includes("output.weight")).toBe(i === plan.shards.length - 1);
      const layers = new Set(s.tensors.filter((t) => t.startsWith("blk.")).map((t) => Number(t.split(".")[1])));
      expect([...layers].sort()).toEqual(Array.from({ length: s.end - s.first }, (_, k) => s.first + k));
    }
  });

  it("spreads layers over at least --shards shards, and puts a tied head's embeddings on the last", () => {
    expect(planShards(file, { budgetBytes: 64 << 20, nCtx: 64, kvType: "f32", minShards: 3 }).shards.map((s) => [s.first, s.end])).toEqual([[0, 2], [2, 3], [3, 4]]);
    const qwen = parseGGUF(new Uint8Array(readFileSync(QWEN)));
    const plan = planShards(qwen, { budgetBytes: 64 << 20, nCtx: 64, kvType: "f32", minShards: 2 });
    expect(plan.shards.map((s) => s.tensors.includes("token_embd.weight"))).toEqual([true, true]);
  });

  it("refuses a budget that one layer cannot fit, naming the numbers", () => {
    expect(() => planShards(file, { budgetBytes: 1 << 20, nCtx: 128, kvType: "f32" })).toThrow(/layer 0 alone needs weights .* over the budget of 1\.0 MB/);
    // A KV budget below one sequence's cache for a layer cannot serve anyone.
    const oneLayer = sequenceKvBytes(readModelConfig(file), 1, 128, "f32");
    expect(() => planShards(file, { budgetBytes: 64 << 20, kvBudgetBytes: oneLayer - 1, nCtx: 128, kvType: "f32" })).toThrow(/alone needs/);
  });
});

describe("layer ranges", () => {
  it("run stage by stage, give the whole model's logits", () => {
    const whole = loadModel(file, createJsBackend());
    const bytesOf = (t: { fileOffset: number; nBytes: number }) => file.bytes.subarray(t.fileOffset, t.fileOffset + t.nBytes);
    const stages = [[0, 2], [2, 3], [3, 4]].map(([first, end]) => Model.load(file, bytesOf, createJsBackend(), { first: first!, end: end! }));
    const caches = stages.map((m) => m.createCache({ nCtx: 16 }));
    const ref = whole.createCache({ nCtx: 16 });
    for (const tokens of [[1, 15, 200, 33], [7], [91]]) {
      const x = stages[0]!.embed(tokens);
      stages.forEach((m, i) => m.forwardLayers([{ cache: caches[i]!, nTokens: tokens.length }], x));
      const [logits] = stages[2]!.logits([{ cache: caches[2]!, nTokens: tokens.length }], x);
      expect(Array.from(logits!)).toEqual(Array.from(whole.forward(ref, tokens)));
    }
    expect(caches[0]!.shape.nLayers).toBe(2);
    expect(() => stages[1]!.embed([1])).toThrow(/first layer range/);
    expect(() => stages[0]!.forward(caches[0]!, [1])).toThrow(/stage by stage/);
  });
});

describe("gguf-split models", () => {
  it("names and numbers split files as gguf-split does", () => {
    expect(splitFileName("models/m", 2, 3)).toBe("models/m-00002-of-00003.gguf");
    expect(parseSplitName("a/b-00001-of-00004.gguf")).toEqual({ prefix: "a/b", no: 1, count: 4 });
    expect(parseSplitName("b.gguf")).toBeUndefined();
    expect(splitFileNames("x-00001-of-00002.gguf")).toEqual(["x-00001-of-00002.gguf", "x-00002-of-00002.gguf"]);
  });

  it("writes a model as 3 files that merge back into the same tensors and logits", () => {
    const parts = writeSplit(file, 3).map((b) => parseGGUF(b));
    expect(parts.map((p) => p.metadata.get("split.no"))).toEqual([0, 1, 2]);
    expect(parts.every((p) => p.tensors.length > 0)).toBe(true);
    expect(parts[1]!.metadata.has("general.architecture")).toBe(false);
    const { header, fileOf } = mergeSplits(parts);
    expect(header.tensors.map((t) => t.name)).toEqual(file.tensors.map((t) => t.name));
    const model = Model.load(header, (t) => parts[fileOf.get(t)!]!.bytes.subarray(t.fileOffset, t.fileOffset + t.nBytes), createJsBackend());
    const whole = loadModel(file, createJsBackend());
    expect(Array.from(model.forward(model.createCache({ nCtx: 8 }), [1, 2, 3]))).toEqual(Array.from(whole.forward(whole.createCache({ nCtx: 8 }), [1, 2, 3])));
    expect(() => mergeSplits([parts[0]!, parts[2]!])).toThrow(/the split has 3 files, 2 given/);
    expect(() => mergeSplits([parts[0]!, parts[2]!, parts[1]!])).toThrow(/file 2 of the split says it is number 3/);
  });
});

describe("petrel shard and upload --plan", () => {
  it("writes a plan from a split model's first file, and uploads it with the model", async () => {
    writeSplit(file, 2).forEach((b, i) => writeFileSync(join(dir, splitFileName("m", i + 1, 2)), b));
    const out = join(dir, "plan.json");
    const r = petrel("shard", join(dir, "m-00001-of-00002.gguf"), "--budget-mb", "8", "--shards", "3", "--ctx", "256", "--out", out, "--json");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const plan = JSON.parse(r.stdout) as ShardPlan;
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(plan);
    expect(plan).toMatchObject({ nLayer: 4, nCtx: 256, kvType: "f32", replicas: 1 });
    expect(plan.shards).toHaveLength(3);

    const bad = petrel("shard", FIXTURE, "--budget-mb", "0.5");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/petrel shard: .*layer 0 alone needs/);

    const persistTo = join(dir, "state");
    const manifest = await uploadModel(FIXTURE, file.bytes, { id: "sharded-q8", persistTo, nCtx: 256, plan });
    expect(manifest).toMatchObject({ shard_plan: planKey("sharded-q8") });
    const local = await openLocalBucket(persistTo, bucketName());
    try {
      expect(await (await local.r2.get(planKey("sharded-q8")))!.json()).toEqual(plan);
    } finally {
      await local.dispose();
    }
    await expect(uploadModel(FIXTURE, file.bytes, { id: "sharded-q8", persistTo, nCtx: 512, plan })).rejects.toThrow(/does not fit .* n_ctx 512/);
  });
});
