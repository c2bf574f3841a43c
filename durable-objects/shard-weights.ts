/**
 * What a sharded model's objects read from R2: the tensor index (every file of a gguf-split
 * model, headers only), the shard plan, and one shard's tensors — only those, with coalesced
 * range requests. A shard's weights are loaded once per isolate and shared by the ShardDOs of
 * that shard index it hosts (replicas); its compute backend is metered so that each forward's
 * weight traffic can be counted.
 */
import { readGGUFHeader, type RandomAccessSource } from "../kernels/gguf/reader.ts";
import { mergeSplits, splitFileNames, type SplitModel } from "../kernels/gguf/split.ts";
import { MeteredBackend } from "../kernels/engine/metered-backend.ts";
import type { Backend } from "../kernels/model/backend.ts";
import { Model } from "../kernels/model/model.ts";
import { ApiError } from "../workers/errors.ts";
import { coalesce, r2Source } from "./executor.ts";
import { MB } from "./memory.ts";
import { isShardPlan, type ShardedManifest, type ShardPlan, type ShardSpec } from "./shard-plan.ts";

export interface ModelIndex {
  split: SplitModel;
  sources: RandomAccessSource[];
  /** The files' etags: part of every cache key, so that a re-upload is loaded afresh. */
  version: string;
}

const missing = (what: string) => new ApiError(404, `The sharded model's ${what} is missing from the bucket.`, "invalid_request_error", "model_not_found", "model");

/** The model's files as they are in the bucket now (a few HEAD requests): their etags name the version. */
export async function modelFiles(bucket: R2Bucket, manifest: ShardedManifest): Promise<{ version: string; sources: RandomAccessSource[] }> {
  const keys = splitFileNames(manifest.file);
  const heads = await Promise.all(keys.map((k) => bucket.head(k)));
  const sources = heads.map((h, i) => {
    if (!h) throw missing(`file ${keys[i]}`);
    return r2Source(bucket, keys[i]!, h.size, h.etag);
  });
  return { version: heads.map((h) => h!.etag).join(","), sources };
}

/** Reads the headers of every file of the model and joins them into one tensor index. */
export async function readModelIndex(files: { version: string; sources: RandomAccessSource[] }): Promise<ModelIndex> {
  const headers = await Promise.all(files.sources.map((s) => readGGUFHeader(s, 1 << 20)));
  return { split: mergeSplits(headers), ...files };
}

export async function readPlan(bucket: R2Bucket, manifest: ShardedManifest): Promise<ShardPlan> {
  const obj = manifest.shard_plan ? await bucket.get(manifest.shard_plan) : null;
  if (!obj) throw missing(`shard plan ${manifest.shard_plan ?? "(none named)"}`);
  const plan: unknown = await obj.json();
  if (!isShardPlan(plan)) throw new ApiError(500, `The shard plan ${manifest.shard_plan} of '${manifest.id}' is malformed.`, "server_error", "internal_error");
  return plan;
}

/** The named tensors' bytes, read file by file in ranges of at most 16 MB (four at a time). */
export async function readTensors(index: ModelIndex, names: readonly string[]): Promise<Map<string, Uint8Array>> {
  const wanted = new Set(names);
  const bytes = new Map<string, Uint8Array>();
  const jobs = index.sources.flatMap((source, file) => {
    const tensors = index.split.header.tensors.filter((t) => wanted.has(t.name) && index.split.fileOf.get(t) === file);
    return coalesce(tensors, 16 * MB).map((g) => ({ source, g }));
  });
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { source, g } = jobs[next++]!;
      const data = await source.read(g.offset, g.length);
      for (const t of g.tensors) bytes.set(t.name, data.subarray(t.fileOffset - g.offset, t.fileOffset - g.offset + t.nBytes));
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, jobs.length) }, worker));
  for (const n of names) if (!bytes.has(n)) throw new Error(`tensor ${n} of the shard plan is not in the model`);
  return bytes;
}

/** One shard's loaded weights. */
export interface ShardWeights {
  plan: ShardPlan;
  spec: ShardSpec;
  model: Model;
  meter: MeteredBackend;
  /** Bytes of the matrices its matmuls read: what one forward reads, however many sessions it holds. */
  matrixBytes: number;
  /** Everything the weights hold: matrices plus vectors as float32. */
  weightBytes: number;
}

const loaded = new Map<string, Promise<ShardWeights>>();

/** The weights of shard `shard` of a model, from this isolate's cache or R2. */
export async function getShardWeights(bucket: R2Bucket, manifest: ShardedManifest, shard: number, backendName: string, createBackend: () => Promise<Backend>): Promise<ShardWeights> {
  const files = await modelFiles(bucket, manifest);
  const key = `${manifest.id}@${files.version}#${shard}/${backendName}`;
  let entry = loaded.get(key);
  if (!entry) {
    // A re-uploaded model replaces the old version's shards in this isolate.
    for (const old of [...loaded.keys()]) if (old.startsWith(`${manifest.id}@`) && old.endsWith(`#${shard}/${backendName}`)) loaded.delete(old);
    entry = readModelIndex(files).then((index) => load(bucket, manifest, index, shard, createBackend));
    loaded.set(key, entry);
    entry.catch(() => {
      if (loaded.get(key) === entry) loaded.delete(key);
    });
  }
  return entry;
}

async function load(bucket: R2Bucket, manifest: ShardedManifest, index: ModelIndex, shard: number, createBackend: () => Promise<Backend>): Promise<ShardWeights> {
  const plan = await readPlan(bucket, manifest);
  const spec = plan.shards[shard];
  if (!spec) throw new RangeError(`the plan of '${manifest.id}' has ${plan.shards.length} shards, not ${shard + 1}`);
  const bytes = await readTensors(index, spec.tensors);
  const meter = new MeteredBackend(await createBackend());
  const model = Model.load(index.split.header, (t) => {
    const b = bytes.get(t.name);
    if (!b) throw new Error(`tensor ${t.name} is not in shard ${shard}'s plan`);
    return b;
  }, meter, { first: spec.first, end: spec.end });
  let matrixBytes = 0;
  let weightBytes = 0;
  // The embeddings are looked up by row, not multiplied, unless they are the tied head.
  const embeddingsAsHead = spec.end === plan.nLayer && model.config.tiedOutput;
  for (const t of index.split.header.tensors) {
    if (!bytes.has(t.name)) continue;
    weightBytes += t.dims.length === 1 ? t.nElements * 4 : t.nBytes;
    if (t.dims.length > 1 && (t.name !== "token_embd.weight" || embeddingsAsHead)) matrixBytes += t.nBytes;
  }
  return { plan, spec, model, meter, matrixBytes, weightBytes };
}
