/** Helpers of the sharding tests: upload a fixture as a sharded model, read its shards' stats. */
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { splitFileName, writeSplit } from "../../kernels/gguf/split.ts";
import { planKey, planShards, type PlanOptions, type ShardedManifest, type ShardPlan } from "../../durable-objects/shard-plan.ts";
import type { ShardStats } from "../../durable-objects/shard-protocol.ts";
import { shardName } from "../../durable-objects/shard.ts";
import { describeModel, manifestKey } from "../../workers/manifest.ts";
import { api, fixtureBytes, testEnv } from "./helpers.ts";

export const Q8 = "fixtures/reference/llama-Q8_0.gguf";

/**
 * Puts a fixture into the bucket as `petrel upload --plan` does: the GGUF (or, with `split`, its
 * gguf-split files), the plan at plans/ID.json, and the manifest naming it.
 */
export async function uploadSharded(id: string, path: string, opts: Partial<PlanOptions> & { nCtx: number; split?: number }): Promise<{ manifest: ShardedManifest; plan: ShardPlan }> {
  const bytes = await fixtureBytes(path);
  const file = parseGGUF(bytes);
  const base = describeModel(file, { id, size: bytes.length, nCtx: opts.nCtx });
  const plan = planShards(file, { budgetBytes: 8 << 20, kvType: base.kv_type, ...opts });
  let key = base.file;
  if (opts.split) {
    const parts = writeSplit(file, opts.split);
    const prefix = `models/${id}`;
    key = splitFileName(prefix, 1, parts.length);
    await Promise.all(parts.map((p, i) => testEnv.MODELS.put(splitFileName(prefix, i + 1, parts.length), p)));
  } else await testEnv.MODELS.put(key, bytes);
  const manifest: ShardedManifest = { ...base, file: key, shard_plan: planKey(id) };
  await testEnv.MODELS.put(planKey(id), JSON.stringify(plan));
  await testEnv.MODELS.put(manifestKey(id), JSON.stringify(manifest));
  return { manifest, plan };
}

export function shardStub(model: string, index: number, replica = 0) {
  return testEnv.SHARDS.get(testEnv.SHARDS.idFromName(shardName(model, index, replica)));
}

export async function shardStats(model: string, plan: ShardPlan, replica = 0): Promise<ShardStats[]> {
  return Promise.all(plan.shards.map((s) => shardStub(model, s.index, replica).stats() as Promise<ShardStats>));
}

/** A greedy completion from token ids through the API; the generated ids. */
export async function completeIds(model: string, prompt: number[], maxTokens: number, session?: string): Promise<number[]> {
  const res = await api("/v1/completions", {
    json: { model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, return_token_ids: true },
    ...(session && { headers: { "x-session-id": session } }),
  });
  const body = (await res.json()) as { choices: { token_ids: number[] }[]; error?: unknown };
  if (res.status !== 200) throw new Error(`completion failed: ${res.status} ${JSON.stringify(body)}`);
  return body.choices[0]!.token_ids;
}
