/** What the PipelineExecutor and a ShardDO say to each other (DO RPC). */
import type { ShardedManifest } from "./shard-plan.ts";

/** One session's step at one shard: tokens [start, start + nTokens) of the session. */
export interface ShardStepRequest {
  model: ShardedManifest;
  shard: number;
  /** The session's key at the shards (its KV-cache there). */
  session: string;
  /** Positions the caller knows the shard holds for this session; the shard forgets anything past it. */
  start: number;
  nTokens: number;
  /** Token ids (first shard only). */
  tokens?: number[];
  /** Hidden states from the previous shard: nTokens × nEmbd. */
  hidden?: Float32Array;
  /** Last shard: the logits of every token, not only the last one's. */
  allLogits?: boolean;
}

export type ShardStepResult =
  /** Hidden states for the next shard (nTokens × nEmbd). */
  | { kind: "hidden"; hidden: Float32Array }
  /** Last shard: logits of the last token (or of every token: nTokens × nVocab). */
  | { kind: "logits"; logits: Float32Array }
  /** The shard does not hold the session's first `start` positions (evicted, or the object was reset). */
  | { kind: "miss"; held: number }
  /** Too many steps waiting: retry after retryAfterMs. */
  | { kind: "overloaded"; retryAfterMs: number; queued: number; limit: number };

/** One forward of a shard: how many sessions and tokens it held, and the weight bytes it read. */
export interface ForwardRecord {
  sessions: number;
  tokens: number;
  weightBytes: number;
}

export interface ShardStats {
  /** null until the first step loads the shard. */
  shard: { index: number; first: number; end: number; replica: string } | null;
  /** Bytes of weight matrices the shard holds (each forward should read them exactly once). */
  matrixBytes: number;
  forwards: ForwardRecord[];
  steps: number;
  /** Sessions whose KV the shard holds now. */
  sessions: number;
  misses: number;
  evictions: number;
  rejected: number;
  /** Longest run of forwards an admitted step was left out of. */
  maxWaitObserved: number;
  /** Most forwards a step spent queued before it was admitted (its session's cache had no room, or the running set was full). */
  maxQueuedObserved: number;
  /** The bound the scheduler guarantees for that wait. */
  maxWaitBound: number;
  memory: { budgetBytes: number; weightBytes: number; kvBytes: number; kvPeakBytes: number; kvBudgetBytes: number; scratchBytes: number; peakBytes: number };
}
