/**
 * ShardDO: one contiguous layer range of a sharded model (named model + shard index + replica).
 * It reads only its own tensors from R2 (shared with the other replicas of its shard index in the
 * isolate), keeps the KV-cache of its layers for the sessions routed to it (ShardKvPool, LRU
 * within the plan's KV budget), and batches concurrent steps of different sessions into one
 * forward (ShardBatcher). It is only a cache of computation: everything it holds can be rebuilt
 * from the tokens the SessionDOs keep, so a reset or an eviction costs time, never data.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../workers/env.ts";
import { ApiError } from "../workers/errors.ts";
import { createServingBackend, servingBackend } from "./backends.ts";
import { mb } from "./memory.ts";
import { ShardBatcher } from "./shard-batcher.ts";
import { ShardKvPool } from "./shard-kv.ts";
import { kvCacheShapeBytes, kvCapacity } from "../kernels/model/backend.ts";
import { sequenceKvShape, type ShardedManifest } from "./shard-plan.ts";
import type { ShardStats, ShardStepRequest, ShardStepResult } from "./shard-protocol.ts";
import { getShardWeights, type ShardWeights } from "./shard-weights.ts";

/** The object serving shard `index` of a model's pipeline `replica`. */
export const shardName = (model: string, index: number, replica: number) => `${model}/shard-${index}/replica-${replica}`;

interface Loaded {
  key: string;
  weights: ShardWeights;
  pool: ShardKvPool;
  batcher: ShardBatcher;
}

/** What a shard holds against its budget; the peak counts the most KV it ever held at once. */
function memoryOf({ weights, pool }: Loaded): ShardStats["memory"] {
  const scratchBytes = weights.spec.scratchBytes;
  return {
    budgetBytes: weights.plan.budgetBytes, weightBytes: weights.weightBytes, kvBytes: pool.bytes, kvPeakBytes: pool.peakBytes,
    kvBudgetBytes: pool.budgetBytes, scratchBytes, peakBytes: weights.weightBytes + pool.peakBytes + scratchBytes,
  };
}

export class ShardDO extends DurableObject<Env> {
  private loaded: Promise<Loaded> | undefined;
  private loggedPeak = -1;

  /** One session's step through this shard's layers (see ShardStepRequest). */
  async step(req: ShardStepRequest): Promise<ShardStepResult> {
    const l = await this.load(req.model, req.shard);
    const result = await l.batcher.submit(req);
    if (l.pool.peakBytes > this.loggedPeak) {
      // A new memory peak: logged so that operators (and bench:batch) see it against the budget.
      this.loggedPeak = l.pool.peakBytes;
      console.log(JSON.stringify({ level: "info", component: "shard", msg: "memory peak", model: req.model.id, shard: l.weights.spec.index, object: this.ctx.id.toString().slice(0, 16), ...memoryOf(l) }));
    }
    return result;
  }

  /**
   * A session's turn is over: its steps are no longer waited for; with forget (the session was
   * deleted, or was ephemeral), its KV here is freed. A shard that has not loaded has nothing to do.
   */
  async leave(session: string, forget: boolean): Promise<void> {
    const l = this.loaded ? await this.loaded : undefined;
    l?.batcher.leave(session, forget);
  }

  /** What the shard did and holds: forwards with their weight traffic, waits, memory. */
  async stats(): Promise<ShardStats> {
    const l = this.loaded ? await this.loaded : undefined;
    const b = l?.batcher;
    const memory = l ? memoryOf(l) : { budgetBytes: 0, weightBytes: 0, kvBytes: 0, kvPeakBytes: 0, kvBudgetBytes: 0, scratchBytes: 0, peakBytes: 0 };
    return {
      shard: l ? { index: l.weights.spec.index, first: l.weights.spec.first, end: l.weights.spec.end, replica: this.ctx.id.toString() } : null,
      matrixBytes: l?.weights.matrixBytes ?? 0,
      forwards: b ? [...b.forwards] : [],
      steps: b?.steps ?? 0,
      sessions: l?.pool.sessions ?? 0,
      misses: b?.misses ?? 0,
      evictions: l?.pool.evictions ?? 0,
      rejected: b?.rejected ?? 0,
      maxWaitObserved: b?.maxWaitObserved ?? 0,
      maxQueuedObserved: b?.maxQueuedObserved ?? 0,
      maxWaitBound: b?.maxWaitBound ?? 0,
      memory,
    };
  }

  private load(manifest: ShardedManifest, shard: number): Promise<Loaded> {
    const key = `${manifest.id}#${shard}`;
    const current = this.loaded;
    if (current) {
      return current.then((l) => {
        if (l.key !== key) throw new ApiError(400, `This shard object serves ${l.key}, not ${key}.`, "invalid_request_error", "wrong_shard");
        return l;
      });
    }
    const backend = servingBackend(this.env.BACKEND);
    const loading = getShardWeights(this.env.MODELS, manifest, shard, backend, () => createServingBackend(backend)).then((weights) => {
      const { plan, spec, model } = weights;
      const total = weights.weightBytes + spec.kvBudgetBytes + spec.scratchBytes;
      if (total > plan.budgetBytes) {
        throw new ApiError(400, `Shard ${shard} of '${manifest.id}' needs weights ${mb(weights.weightBytes)} + KV ${mb(spec.kvBudgetBytes)} + scratch ${mb(spec.scratchBytes)} = ${mb(total)}, ` +
          `over its budget of ${mb(plan.budgetBytes)}; make a new plan.`, "invalid_request_error", "model_too_large", "model");
      }
      const shape = sequenceKvShape(model.config, spec.end - spec.first, plan.nCtx, plan.kvType);
      const pool = new ShardKvPool(spec.kvBudgetBytes, () => model.createCache({ nCtx: plan.nCtx, kvType: plan.kvType, paged: true }), (n) => kvCacheShapeBytes(shape, kvCapacity(shape, n)));
      return { key, weights, pool, batcher: new ShardBatcher(weights, pool, plan.batching) };
    });
    this.loaded = loading;
    loading.catch(() => {
      if (this.loaded === loading) this.loaded = undefined;
    });
    return loading;
  }
}
