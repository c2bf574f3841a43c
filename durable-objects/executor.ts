/**
 * LocalExecutor support: the whole model in this isolate. Weights are read from R2 with range
 * requests (the GGUF header first, then the tensor data in a few coalesced ranges) and loaded
 * once per isolate — a module-level cache keyed by model id + R2 etag, shared by every
 * SessionDO the isolate hosts. Every byte the engine holds is accounted against the isolate
 * budget: models (weights, tokenizer, scratch) and the KV-cache of each session; idle sessions'
 * caches are evicted (least recently used first) to make room — they are rebuilt from the stored
 * tokens — and what cannot fit is refused with the numbers.
 */
import { readGGUFHeader, type RandomAccessSource } from "../kernels/gguf/reader.ts";
import type { GGUFHeader, GGUFTensorInfo } from "../kernels/gguf/types.ts";
import type { Backend, KVCache, KVType } from "../kernels/model/backend.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { type ModelConfig, readModelConfig } from "../kernels/model/config.ts";
import { Model } from "../kernels/model/model.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";
import { ApiError } from "../workers/errors.ts";
import type { ModelManifest } from "../workers/manifest.ts";
import { describePlan, mb, MB, planMemory, type MemoryPlan } from "./memory.ts";

/** What a session runs its turns on: the whole model in this isolate, or a pipeline of shards (pipeline.ts). */
export interface ServingModel {
  readonly config: ModelConfig;
  readonly backend: { readonly name: string };
  /** `session` names the cache where it lives elsewhere (a pipeline's shards). */
  createCache(opts: { nCtx: number; kvType: KVType; session?: string }): KVCache;
  forward(cache: KVCache, tokens: ArrayLike<number>): Float32Array | Promise<Float32Array>;
  /**
   * The cache's turn is over (where it lives elsewhere: a pipeline's shards stop waiting for its
   * steps); with forget, what it holds there can be freed.
   */
  endTurn?(cache: KVCache, opts: { forget: boolean }): void;
}

export interface LoadedModel {
  /** id@etag: the cache key. */
  key: string;
  manifest: ModelManifest;
  model: ServingModel;
  tokenizer: Tokenizer;
  chatTemplate: string | undefined;
  plan: MemoryPlan;
  /** Bytes this model holds in the isolate beyond KV-caches: weights + scratch + tokenizer. */
  residentBytes: number;
  loadMs: number;
}

/** A model that cannot be served within the budget (a 400 naming the numbers). */
export const doesNotFit = (message: string) => new ApiError(400, message, "invalid_request_error", "model_too_large", "model");

/** An R2 object as a RandomAccessSource; every read is pinned to the etag it started with. */
export function r2Source(bucket: R2Bucket, key: string, size: number, etag: string, onRead?: (bytes: number) => void): RandomAccessSource {
  return {
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (length === 0) return new Uint8Array(0);
      const obj = await bucket.get(key, { range: { offset, length }, onlyIf: { etagMatches: etag } });
      if (!obj || !("body" in obj)) throw new Error(`R2 object ${key} changed or vanished while loading (etag ${etag})`);
      const bytes = new Uint8Array(await obj.arrayBuffer());
      onRead?.(bytes.length);
      return bytes;
    },
  };
}

/** Groups tensors into contiguous ranges of at most `maxRange` bytes (one R2 read each). */
export function coalesce(tensors: readonly GGUFTensorInfo[], maxRange: number): { offset: number; length: number; tensors: GGUFTensorInfo[] }[] {
  const sorted = [...tensors].sort((a, b) => a.fileOffset - b.fileOffset);
  const groups: { offset: number; length: number; tensors: GGUFTensorInfo[] }[] = [];
  for (const t of sorted) {
    const g = groups.at(-1);
    const end = t.fileOffset + t.nBytes;
    if (g && end - g.offset <= maxRange) {
      g.length = Math.max(g.length, end - g.offset);
      g.tensors.push(t);
    } else groups.push({ offset: t.fileOffset, length: t.nBytes, tensors: [t] });
  }
  return groups;
}

/** The isolate's memory ledger. */
class IsolateMemory {
  readonly models = new Map<string, number>();
  readonly caches = new Map<string, { bytes: number; lastUsed: number; busy: boolean; modelKey: string; evict: () => void }>();

  used(): number {
    let total = 0;
    for (const b of this.models.values()) total += b;
    for (const c of this.caches.values()) total += c.bytes;
    return total;
  }

  /** Frees idle caches (LRU first, never `keep`) until `need` more bytes fit; false if they cannot. */
  makeRoom(need: number, budget: number, keep: string): boolean {
    if (this.used() + need <= budget) return true;
    const idle = [...this.caches].filter(([owner, c]) => owner !== keep && !c.busy).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [owner, c] of idle) {
      c.evict();
      this.caches.delete(owner);
      if (this.used() + need <= budget) return true;
    }
    // Models nobody holds a cache of can go too.
    for (const key of [...this.models.keys()]) {
      if ([...this.caches.values()].some((c) => c.modelKey === key)) continue;
      this.models.delete(key);
      models.delete(key);
      if (this.used() + need <= budget) return true;
    }
    return this.used() + need <= budget;
  }
}

const memory = new IsolateMemory();
const models = new Map<string, Promise<LoadedModel>>();
const stats = { loads: 0, rangeReads: 0, bytesRead: 0 };

export function isolateStats() {
  return { ...stats, memoryUsed: memory.used(), models: [...memory.models.keys()], caches: memory.caches.size };
}

export interface ExecutorOptions {
  budgetBytes: number;
  prefillChunk: number;
  /** Backend name: part of the cache key, so that switching backends loads the model again. */
  backend?: string;
  createBackend?: () => Backend | Promise<Backend>;
}

/**
 * The loaded model for a manifest entry, from the isolate cache or R2. Checks the memory plan
 * against the budget from the header alone, before any weight is read.
 */
export async function getModel(bucket: R2Bucket, manifest: ModelManifest, opts: ExecutorOptions, log: (msg: string, extra?: Record<string, unknown>) => void): Promise<LoadedModel> {
  const head = await bucket.head(manifest.file);
  if (!head) throw new ApiError(404, `The model '${manifest.id}' is listed but its file ${manifest.file} is missing from the bucket.`, "invalid_request_error", "model_not_found", "model");
  const key = `${manifest.id}@${head.etag}/${opts.backend ?? "js"}`;
  let entry = models.get(key);
  if (!entry) {
    // A re-uploaded model replaces the old version in this isolate.
    for (const old of [...models.keys()]) {
      if (old.startsWith(`${manifest.id}@`)) {
        models.delete(old);
        memory.models.delete(old);
      }
    }
    entry = load(bucket, manifest, head, key, opts, log);
    models.set(key, entry);
    entry.catch(() => {
      if (models.get(key) === entry) models.delete(key);
      memory.models.delete(key);
    });
  }
  return entry;
}

async function load(bucket: R2Bucket, manifest: ModelManifest, head: R2Object, key: string, opts: ExecutorOptions, log: (msg: string, extra?: Record<string, unknown>) => void): Promise<LoadedModel> {
  const started = Date.now();
  const source = r2Source(bucket, manifest.file, head.size, head.etag, (n) => {
    stats.rangeReads++;
    stats.bytesRead += n;
  });
  const header: GGUFHeader = await readGGUFHeader(source, 1 << 20);
  const config = readModelConfig(header);
  const plan = planMemory(header, config, { nCtx: manifest.n_ctx, kvType: manifest.kv_type, prefillChunk: opts.prefillChunk });
  if (plan.total > opts.budgetBytes) {
    throw doesNotFit(`Model '${manifest.id}' does not fit in the isolate memory budget of ${mb(opts.budgetBytes)}: ${describePlan(plan)}. ` +
      `Use a smaller quantization or context length (n_ctx), an f16 KV-cache, or a sharded deployment.`);
  }
  const resident = plan.total - plan.kvCache;
  if (!memory.makeRoom(resident, opts.budgetBytes, "")) {
    throw doesNotFit(`Model '${manifest.id}' needs ${mb(resident)} (${describePlan(plan)}) but this isolate has ${mb(opts.budgetBytes - memory.used())} ` +
      `of its ${mb(opts.budgetBytes)} budget free while other sessions are generating; retry shortly.`);
  }
  memory.models.set(key, resident);

  const bytes = new Map<string, Uint8Array>();
  const groups = coalesce(header.tensors, 16 * MB);
  let next = 0;
  const worker = async () => {
    while (next < groups.length) {
      const g = groups[next++]!;
      const data = await source.read(g.offset, g.length);
      for (const t of g.tensors) bytes.set(t.name, data.subarray(t.fileOffset - g.offset, t.fileOffset - g.offset + t.nBytes));
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, groups.length) }, worker));

  const backend = await (opts.createBackend ?? createJsBackend)();
  const model = Model.load(header, (t) => {
    const b = bytes.get(t.name);
    if (!b) throw new Error(`tensor ${t.name} was not read`);
    return b;
  }, backend);
  const tokenizer = Tokenizer.fromMetadata(header.metadata);
  const template = header.metadata.get("tokenizer.chat_template");
  stats.loads++;
  const loadMs = Date.now() - started;
  log("model loaded", { model: key, load_ms: loadMs, ranges: groups.length, memory: describePlan(plan) });
  return { key, manifest, model, tokenizer, chatTemplate: typeof template === "string" ? template : undefined, plan, residentBytes: resident, loadMs };
}

/**
 * A session's KV-cache, registered with the isolate's ledger. `tokens` mirrors exactly what the
 * cache holds; an eviction empties both.
 */
export class SessionCache {
  kv: KVCache | undefined;
  tokens: number[] = [];
  modelKey: string | undefined;
  private model: ServingModel | undefined;

  constructor(private readonly owner: string) {}

  /** Makes sure a cache for `loaded` exists (evicting others' idle caches to fit) and marks it busy. */
  acquire(loaded: LoadedModel, budgetBytes: number): KVCache {
    if (this.kv && this.modelKey !== loaded.key) this.release();
    const existing = memory.caches.get(this.owner);
    if (this.kv && existing) {
      existing.busy = true;
      existing.lastUsed = Date.now();
      return this.kv;
    }
    // An earlier instance of this object (before a restart in the same isolate) may still hold one.
    if (existing) {
      existing.evict();
      memory.caches.delete(this.owner);
    }
    const bytes = loaded.plan.kvCache;
    if (!memory.makeRoom(bytes, budgetBytes, this.owner)) {
      throw doesNotFit(`No room for a KV-cache of ${mb(bytes)} (n_ctx ${loaded.manifest.n_ctx}, ${loaded.manifest.kv_type}): this isolate uses ` +
        `${mb(memory.used())} of its ${mb(budgetBytes)} budget for sessions that are generating; retry shortly.`);
    }
    this.kv = loaded.model.createCache({ nCtx: loaded.manifest.n_ctx, kvType: loaded.manifest.kv_type, session: this.owner });
    this.tokens = [];
    this.modelKey = loaded.key;
    this.model = loaded.model;
    memory.caches.set(this.owner, { bytes: this.kv.bytes, lastUsed: Date.now(), busy: true, modelKey: loaded.key, evict: () => this.drop() });
    return this.kv;
  }

  /** The turn is over: the cache stays, evictable. */
  idle(): void {
    if (this.kv) this.model?.endTurn?.(this.kv, { forget: false });
    const c = memory.caches.get(this.owner);
    if (c) {
      c.busy = false;
      c.lastUsed = Date.now();
    }
  }

  /** Frees the cache now. */
  release(): void {
    if (this.kv) this.model?.endTurn?.(this.kv, { forget: true });
    memory.caches.delete(this.owner);
    this.drop();
  }

  private drop(): void {
    this.kv = undefined;
    this.tokens = [];
    this.modelKey = undefined;
    this.model = undefined;
  }
}

/** Longest common prefix of two token sequences. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
