/**
 * `petrel shard FILE --budget-mb N [--kv-budget-mb N] [--ctx N] [--kv-type f32|f16] [--shards N]
 * [--replicas N] [--window-ms N] [--max-batch N] [--queue-limit N] [--out PLAN.json] [--json]`
 *
 * Cuts a model into layer ranges whose weights + KV budget + scratch fit the budget, from the
 * tensor index alone (a gguf-split model: give its first file). `petrel upload --plan PLAN.json`
 * stores the plan with the model; the worker then serves it as a pipeline of ShardDOs.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { mergeSplits, splitFileNames } from "../../kernels/gguf/split.ts";
import { readModelConfig } from "../../kernels/model/config.ts";
import { DEFAULT_BATCHING, planShards, ShardPlanError, type ShardPlan } from "../../durable-objects/shard-plan.ts";
import { CliError, Flags, parseArgs } from "./args.ts";
import { openDiskModel } from "./io.ts";

const OPTIONS = ["budget-mb", "kv-budget-mb", "ctx", "kv-type", "shards", "replicas", "window-ms", "max-batch", "queue-limit", "out", "json"];
const USAGE = "usage: petrel shard FILE --budget-mb N [--kv-budget-mb N] [--ctx N] [--kv-type f32|f16] [--shards N] [--replicas N] [--out PLAN.json] [--json]";
const MB = 1024 * 1024;

/** The plan for a model file (every file of a split, headers only). */
export async function shardFile(path: string, flags: Flags): Promise<ShardPlan> {
  const files = splitFileNames(path).map((name) => join(dirname(path), name.slice(name.lastIndexOf("/") + 1)));
  const headers = [];
  for (const f of files) {
    const disk = await openDiskModel(f);
    headers.push(disk.header);
    disk.close();
  }
  let header;
  try {
    header = mergeSplits(headers).header;
  } catch (e) {
    throw new CliError(`${path}: ${(e as Error).message}`);
  }
  const kvType = flags.string("kv-type") ?? "f32";
  if (kvType !== "f32" && kvType !== "f16") throw new CliError(`--kv-type must be f32 or f16, got '${kvType}'`);
  const budget = flags.number("budget-mb", { min: 0.001 });
  if (budget === undefined) throw new CliError("--budget-mb is required");
  const kvBudget = flags.number("kv-budget-mb", { min: 0.001 });
  let nCtxTrain: number;
  try {
    nCtxTrain = readModelConfig(header).nCtxTrain;
  } catch (e) {
    throw new CliError(`${path} cannot be served: ${(e as Error).message}`);
  }
  const batching = {
    windowMs: flags.number("window-ms", { min: 0 }) ?? DEFAULT_BATCHING.windowMs,
    maxBatch: flags.number("max-batch", { integer: true, min: 1 }) ?? DEFAULT_BATCHING.maxBatch,
    queueLimit: flags.number("queue-limit", { integer: true, min: 1 }) ?? DEFAULT_BATCHING.queueLimit,
  };
  try {
    return planShards(header, {
      budgetBytes: Math.floor(budget * MB),
      ...(kvBudget !== undefined && { kvBudgetBytes: Math.floor(kvBudget * MB) }),
      nCtx: flags.number("ctx", { integer: true, min: 1, max: nCtxTrain }) ?? Math.min(nCtxTrain, 2048),
      kvType,
      minShards: flags.number("shards", { integer: true, min: 1 }),
      replicas: flags.number("replicas", { integer: true, min: 1 }),
      batching,
    });
  } catch (e) {
    if (e instanceof ShardPlanError) throw new CliError(`${path}: ${e.message}`);
    throw e;
  }
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["json"]), OPTIONS);
  const [path, ...extra] = flags.positional;
  if (!path || extra.length > 0) throw new CliError(USAGE);
  const plan = await shardFile(path, flags);
  const out = flags.string("out");
  if (out) writeFileSync(out, JSON.stringify(plan, null, 2) + "\n");
  if (flags.bool("json")) {
    process.stdout.write(JSON.stringify(plan) + "\n");
    return;
  }
  const mb = (b: number) => `${(b / MB).toFixed(1)} MB`;
  const lines = plan.shards.map((s) => `shard ${s.index}: layers ${s.first}–${s.end - 1}, weights ${mb(s.weightBytes)} + KV ${mb(s.kvBudgetBytes)} + scratch ${mb(s.scratchBytes)} = ${mb(s.totalBytes)}`);
  process.stdout.write(`${plan.shards.length} shards of ${plan.nLayer} layers within ${mb(plan.budgetBytes)} each (n_ctx ${plan.nCtx}, ${plan.kvType} KV, ${plan.replicas} replica${plan.replicas > 1 ? "s" : ""})\n${lines.join("\n")}\n` +
    (out ? `plan written to ${out}\n` : ""));
}
