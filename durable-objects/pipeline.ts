/**
 * PipelineExecutor: how a SessionDO runs a sharded model. The session holds the tokenizer and
 * the model's shape (headers only, no weights); each step sends its tokens to shard 0 and the
 * hidden states on from shard to shard (DO RPC) until the last returns logits. The session's
 * replica is chosen from its key, so it always returns to the pipeline that holds its KV.
 *
 * The shards' KV-caches are caches: each step says at which position it starts, a shard that
 * holds less (evicted, or the object was reset) reports a miss — or the call fails — and the step
 * is recomputed from the tokens this session keeps, from position 0, through every shard.
 */
import type { KVCache, KVCacheShape, KVType } from "../kernels/model/backend.ts";
import { type ModelConfig, readModelConfig } from "../kernels/model/config.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";
import type { Env } from "../workers/env.ts";
import { ApiError, rateLimited } from "../workers/errors.ts";
import type { LoadedModel } from "./executor.ts";
import type { ShardedManifest, ShardPlan } from "./shard-plan.ts";
import type { ShardStepRequest, ShardStepResult } from "./shard-protocol.ts";
import { shardName, type ShardDO } from "./shard.ts";
import { modelFiles, readModelIndex, readPlan } from "./shard-weights.ts";
import { readManifest } from "../workers/manifest.ts";

/** Full recomputations one step may need (a shard reset while recomputing, …) before it fails. */
const MAX_RECOMPUTES = 3;
/** Waits for a busy shard during a turn that is already generating (new turns get 429 instead). */
const MAX_BUSY_WAITS = 20;

export const isSharded = (m: ShardedManifest) => typeof m.shard_plan === "string";

/**
 * A session's KV-cache as the session sees it: the positions the pipeline holds for it and their
 * tokens (what a recomputation replays). The K/V themselves live in the shards.
 */
export class RemoteKV implements KVCache {
  length = 0;
  readonly bytes = 0;
  readonly history: number[] = [];
  /** A step of this turn succeeded: a busy shard is waited for rather than refused. */
  generating = false;

  constructor(
    readonly shape: KVCacheShape,
    readonly session: string,
    readonly replica: number,
  ) {}

  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new RangeError(`cannot truncate a cache of ${this.length} positions to ${n}`);
    this.length = n;
    this.history.length = n;
    this.generating = false;
  }

  copyPrefixTo(): void {
    throw new TypeError("a pipeline's KV-cache lives in its shards and cannot be copied");
  }
}

/** FNV-1a: a stable replica for a session key. */
function replicaOf(session: string, replicas: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < session.length; i++) h = Math.imul(h ^ session.charCodeAt(i), 0x01000193);
  return (h >>> 0) % replicas;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class PipelineModel {
  readonly backend: { name: string };

  constructor(
    readonly config: ModelConfig,
    readonly plan: ShardPlan,
    private readonly manifest: ShardedManifest,
    private readonly shards: DurableObjectNamespace<ShardDO>,
    backendName: string,
  ) {
    this.backend = { name: `${backendName}-pipeline` };
  }

  createCache(opts: { nCtx?: number; kvType?: KVType; session?: string }): RemoteKV {
    const session = opts.session ?? crypto.randomUUID();
    const shape = { nLayers: this.config.nLayer, nCtx: opts.nCtx ?? this.plan.nCtx, kvDim: this.config.nHeadKv * this.config.headDim, type: opts.kvType ?? this.plan.kvType };
    return new RemoteKV(shape, session, replicaOf(session, this.plan.replicas));
  }

  /** Feeds `tokens` after what the cache holds; the logits of the last one. */
  async forward(cache: KVCache, tokens: ArrayLike<number>): Promise<Float32Array> {
    if (!(cache instanceof RemoteKV)) throw new TypeError("a pipeline runs on its own caches (createCache)");
    const fresh = Array.from(tokens);
    if (cache.length + fresh.length > cache.shape.nCtx) throw new RangeError(`context overflow: ${cache.length} cached + ${fresh.length} new tokens > context size ${cache.shape.nCtx}`);
    let start = cache.length;
    let feed = fresh;
    for (let attempt = 0; ; attempt++) {
      const logits = await this.runOnce(cache, start, feed, attempt === MAX_RECOMPUTES);
      if (logits) {
        cache.history.push(...fresh);
        cache.length += fresh.length;
        cache.generating = true;
        return logits;
      }
      // A shard lost this session's KV: recompute everything from the tokens kept here.
      start = 0;
      feed = [...cache.history, ...fresh];
    }
  }

  /** Tells the replica's shards that this session's turn is over (with forget: drop its KV there too). */
  endTurn(cache: KVCache, { forget }: { forget: boolean }): void {
    if (cache instanceof RemoteKV) void leaveShards(this.shards, this.manifest.id, this.plan, cache.session, forget);
  }

  /** One pass through the shards; undefined on a miss (or a failed shard) unless `final`, where it throws. */
  private async runOnce(cache: RemoteKV, start: number, feed: number[], final: boolean): Promise<Float32Array | undefined> {
    let hidden: Float32Array | undefined;
    for (const spec of this.plan.shards) {
      const req: ShardStepRequest = {
        model: this.manifest,
        shard: spec.index,
        session: cache.session,
        start,
        nTokens: feed.length,
        ...(spec.index === 0 ? { tokens: feed } : { hidden }),
      };
      const res = await this.call(spec.index, cache, req, final);
      if (!res || res.kind === "miss") {
        if (final) throw new ApiError(503, `Shard ${spec.index} of '${this.manifest.id}' kept losing this session's state; retry.`, "server_error", "shard_unavailable");
        return undefined;
      }
      if (res.kind === "logits") return res.logits;
      if (res.kind === "hidden") hidden = res.hidden;
    }
    throw new Error(`the last shard of '${this.manifest.id}' returned no logits`);
  }

  /** A step at one shard: a busy shard refuses a new turn (429) and is waited for during one; a failing one is a miss. */
  private async call(index: number, cache: RemoteKV, req: ShardStepRequest, final: boolean): Promise<ShardStepResult | undefined> {
    const stub = shardStub(this.shards, this.manifest.id, index, cache.replica);
    for (let wait = 0; ; wait++) {
      let res: ShardStepResult;
      try {
        res = (await stub.step(req)) as ShardStepResult;
      } catch (e) {
        if (e instanceof ApiError || final) throw e;
        console.error(JSON.stringify({ level: "warn", component: "pipeline", msg: "shard step failed; recomputing", shard: index, error: String(e) }));
        return undefined;
      }
      if (res.kind !== "overloaded") return res;
      if (!cache.generating || wait >= MAX_BUSY_WAITS) {
        throw rateLimited(`The model '${this.manifest.id}' is overloaded: shard ${index} has ${res.queued} steps waiting (limit ${res.limit}). Retry shortly.`, "requests", Math.ceil(res.retryAfterMs / 1000));
      }
      await sleep(Math.min(res.retryAfterMs, 250));
    }
  }
}

const shardStub = (shards: DurableObjectNamespace<ShardDO>, model: string, index: number, replica: number) =>
  shards.get(shards.idFromName(shardName(model, index, replica)));

/** Sends a session's turn end (with forget: drop its KV) to every shard of its replica; failures are logged, not thrown. */
async function leaveShards(shards: DurableObjectNamespace<ShardDO>, model: string, plan: ShardPlan, session: string, forget: boolean): Promise<void> {
  const replica = replicaOf(session, plan.replicas);
  await Promise.all(plan.shards.map((spec) =>
    shardStub(shards, model, spec.index, replica).leave(session, forget).catch((e: unknown) => {
      console.error(JSON.stringify({ level: "warn", component: "pipeline", msg: "shard leave failed", shard: spec.index, error: String(e) }));
    })));
}

/**
 * Frees a session's KV in the shards of the sharded models among `models` (by id): for a deleted
 * session whose object no longer holds its pipeline cache (it restarted since its last turn).
 */
export async function forgetInShards(env: Env, models: readonly string[], session: string): Promise<void> {
  for (const id of models) {
    const manifest = await readManifest(env.MODELS, id);
    if (manifest && isSharded(manifest)) await leaveShards(env.SHARDS, id, await readPlan(env.MODELS, manifest), session, true);
  }
}

const pipelines = new Map<string, Promise<LoadedModel>>();

/** The session-side view of a sharded model (tokenizer, shape, plan), cached per isolate. */
export async function getPipelineModel(env: Env, manifest: ShardedManifest, backendName: string, log: (msg: string, extra?: Record<string, unknown>) => void): Promise<LoadedModel> {
  const files = await modelFiles(env.MODELS, manifest);
  const key = `${manifest.id}@${files.version}/${backendName}-pipeline`;
  let entry = pipelines.get(key);
  if (!entry) {
    entry = (async () => {
      const started = Date.now();
      const header = (await readModelIndex(files)).split.header;
      const config = readModelConfig(header);
      const plan = await readPlan(env.MODELS, manifest);
      if (plan.nLayer !== config.nLayer || plan.nCtx < manifest.n_ctx) {
        throw new ApiError(500, `The shard plan of '${manifest.id}' does not match the model (layers ${plan.nLayer} vs ${config.nLayer}, n_ctx ${plan.nCtx} vs ${manifest.n_ctx}).`, "server_error", "internal_error");
      }
      const template = header.metadata.get("tokenizer.chat_template");
      const tokenizer = Tokenizer.fromMetadata(header.metadata);
      const tokenizerBytes = header.dataOffset * 2;
      const scratch = config.nVocab * 16;
      log("pipeline ready", { model: key, shards: plan.shards.length, replicas: plan.replicas });
      return {
        key,
        manifest,
        model: new PipelineModel(config, plan, manifest, env.SHARDS, backendName),
        tokenizer,
        chatTemplate: typeof template === "string" ? template : undefined,
        // Weights and KV live in the shards: this isolate holds the tokenizer and a logits row.
        plan: { weights: 0, kvCache: 0, scratch, tokenizer: tokenizerBytes, total: scratch + tokenizerBytes, nCtx: manifest.n_ctx, kvType: manifest.kv_type },
        residentBytes: scratch + tokenizerBytes,
        loadMs: Date.now() - started,
      };
    })();
    pipelines.set(key, entry);
    entry.catch(() => {
      if (pipelines.get(key) === entry) pipelines.delete(key);
    });
  }
  return entry;
}
