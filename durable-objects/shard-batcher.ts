/**
 * A ShardDO's continuous batching. Steps of different sessions that arrive within the batching
 * window run as one forward of the shard's layers (matrix × matrix: each weight read once for
 * all of them). The window waits only for the steps it can expect: on a shard that has been
 * idle, a full batch; on a busy one, one step of every session active in the last second. It
 * closes as soon as they are in, so a lone session never waits once it is running. Which steps run, and how many of their tokens, is the engine's Scheduler
 * (kernels/engine/scheduler.ts) — iteration-level scheduling with chunked prefill and a
 * starvation bound — applied to steps instead of whole generations: a step is admitted when its
 * session's cache can be pinned, a long prefill is cut into chunks that share forwards with
 * other sessions' decodes, and a full queue refuses new steps (the caller answers 429).
 */
import { RequestQueue } from "../kernels/engine/queue.ts";
import { maxWaitBound, Scheduler, type SchedulableSeq, type SchedulerConfig } from "../kernels/engine/scheduler.ts";
import type { KVCache } from "../kernels/model/backend.ts";
import type { ShardKvPool } from "./shard-kv.ts";
import type { BatchingConfig } from "./shard-plan.ts";
import type { ForwardRecord, ShardStepRequest, ShardStepResult } from "./shard-protocol.ts";
import type { ShardWeights } from "./shard-weights.ts";

/** Forwards remembered for stats(). */
const FORWARD_HISTORY = 256;
/** A session that sent a step this recently is expected to send the next one soon. */
const ACTIVE_MS = 1000;

class Step implements SchedulableSeq {
  lastScheduled = -1;
  admittedAt = -1;
  done = 0;
  cache: KVCache | undefined;
  missed = false;
  /** Consecutive forwards left out while admitted, and the longest such run. */
  waiting = 0;
  maxWait = 0;
  /** Forwards that ran while it was queued. */
  queuedFor = 0;
  /** Hidden states for the next shard, or (last shard, allLogits) every token's logits. */
  readonly output: Float32Array;
  /** Last shard: the last token's logits. */
  lastLogits: Float32Array | undefined;
  readonly result: Promise<ShardStepResult>;
  resolve!: (r: ShardStepResult) => void;

  constructor(
    readonly req: ShardStepRequest,
    readonly arrival: number,
    readonly queuedAt: number,
    outputWidth: number,
  ) {
    this.output = new Float32Array(req.nTokens * outputWidth);
    this.result = new Promise((r) => (this.resolve = r));
  }

  get numTokens(): number {
    return this.req.start + this.req.nTokens;
  }

  get numComputed(): number {
    return this.req.start + this.done;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ShardBatcher {
  readonly scheduler: Scheduler<Step>;
  private readonly queue: RequestQueue<Step>;
  private running: Step[] = [];
  private looping = false;
  /** Ends the batching window early (every expected session is in). */
  private closeWindow: (() => void) | undefined;
  /** When each session last sent a step. */
  private readonly lastSeen = new Map<string, number>();
  private lastForwardAt = -Infinity;
  private arrivals = 0;
  private stepMs = 0;
  readonly forwards: ForwardRecord[] = [];
  steps = 0;
  misses = 0;
  rejected = 0;
  maxWaitObserved = 0;
  maxQueuedObserved = 0;

  constructor(
    private readonly weights: ShardWeights,
    private readonly pool: ShardKvPool,
    private readonly config: BatchingConfig,
  ) {
    const schedulerConfig: SchedulerConfig = {
      // Twice a batch admitted at once: the scheduler then picks among them (decodes before
      // prefill chunks, the longest-waiting first), which is what bounds every admitted step's wait.
      maxRunning: 2 * config.maxBatch,
      maxBatchSeqs: config.maxBatch,
      tokenBudget: Math.max(config.tokenBudget, config.maxBatch),
      prefillChunk: config.prefillChunk,
      starvationSteps: config.starvationSteps,
    };
    this.scheduler = new Scheduler(schedulerConfig);
    this.queue = new RequestQueue(config.queueLimit);
  }

  get maxWaitBound(): number {
    return maxWaitBound(this.scheduler.config);
  }

  private get last(): boolean {
    return this.weights.spec.end === this.weights.plan.nLayer;
  }

  /** Queues one session's step; resolves when all its tokens went through the shard's layers. */
  submit(req: ShardStepRequest): Promise<ShardStepResult> {
    const { model } = this.weights;
    const { nEmbd, nVocab } = model.config;
    if (!Number.isInteger(req.nTokens) || req.nTokens < 1 || !Number.isInteger(req.start) || req.start < 0) throw new RangeError(`bad step: start ${req.start}, ${req.nTokens} tokens`);
    if (req.start + req.nTokens > this.weights.plan.nCtx) throw new RangeError(`context overflow: ${req.start} + ${req.nTokens} tokens > n_ctx ${this.weights.plan.nCtx}`);
    if (model.range.first === 0 ? req.tokens?.length !== req.nTokens : req.hidden?.length !== req.nTokens * nEmbd) {
      throw new RangeError(`shard ${this.weights.spec.index} needs ${model.range.first === 0 ? `${req.nTokens} token ids` : `${req.nTokens} × ${nEmbd} hidden values`}`);
    }
    const held = this.pool.held(req.session);
    if (held < req.start) {
      this.misses++;
      return Promise.resolve({ kind: "miss", held });
    }
    if (this.queue.full) {
      this.rejected++;
      const retryAfterMs = Math.max(1000, Math.ceil((this.queue.length / this.config.maxBatch) * this.stepMs));
      return Promise.resolve({ kind: "overloaded", retryAfterMs, queued: this.queue.length, limit: this.config.queueLimit });
    }
    const width = this.last ? (req.allLogits ? nVocab : 0) : nEmbd;
    const step = new Step(req, this.arrivals++, this.scheduler.steps, width);
    this.queue.offer(step);
    this.steps++;
    this.lastSeen.set(req.session, Date.now());
    if (this.queue.length >= this.expected()) this.closeWindow?.();
    if (!this.looping) void this.loop();
    return step.result;
  }

  /** The session sends no more steps for now: stop expecting it; with forget, free its cache. */
  leave(session: string, forget: boolean): void {
    this.lastSeen.delete(session);
    if (this.lastSeen.size === 0) this.lastForwardAt = -Infinity;
    if (forget) this.pool.drop(session);
  }

  /**
   * Admission: pin the session's cache and cut it back to the step's start. A cache evicted
   * since the step was queued makes it a miss (it is dropped from the forward).
   */
  private admit = (step: Step): boolean => {
    const positions = step.req.start + step.req.nTokens;
    if (!this.pool.canPin(step.req.session, positions)) return false;
    const had = this.pool.has(step.req.session);
    step.cache = this.pool.pin(step.req.session, positions)!;
    if ((!had && step.req.start > 0) || step.cache.length < step.req.start) step.missed = true;
    else step.cache.truncate(step.req.start);
    return true;
  };

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      if (this.config.windowMs > 0 && this.queue.length < this.expected()) {
        await new Promise<void>((resolve) => {
          this.closeWindow = resolve;
          setTimeout(resolve, this.config.windowMs);
        });
        this.closeWindow = undefined;
      }
      while (this.running.length > 0 || this.queue.length > 0) {
        const out = this.scheduler.schedule(this.running, this.queue, this.admit);
        for (const s of out.admitted) {
          this.queue.removeWhere((q) => q === s);
          this.maxQueuedObserved = Math.max(this.maxQueuedObserved, s.queuedFor);
          this.running.push(s);
        }
        for (const s of this.running.filter((r) => r.missed)) this.finish(s, { kind: "miss", held: 0 }, true);
        const items = out.items.filter((i) => !i.seq.missed);
        if (items.length > 0) {
          const started = Date.now();
          this.forward(items);
          this.lastForwardAt = Date.now();
          this.stepMs = this.stepMs === 0 ? Date.now() - started : 0.8 * this.stepMs + 0.2 * (Date.now() - started);
        }
        const scheduled = new Set(items.map((i) => i.seq));
        for (const s of this.running) {
          s.waiting = scheduled.has(s) ? 0 : s.waiting + 1;
          s.maxWait = Math.max(s.maxWait, s.waiting);
          this.maxWaitObserved = Math.max(this.maxWaitObserved, s.maxWait);
        }
        for (const s of this.queue) s.queuedFor++;
        for (const s of this.running.filter((r) => r.done === r.req.nTokens)) this.finish(s, this.resultOf(s), false);
        // Let steps that arrived meanwhile join the next forward.
        await sleep(0);
      }
    } finally {
      this.looping = false;
    }
  }

  /** Steps worth waiting for: a batch on an idle shard, else one from every recently active session. */
  private expected(): number {
    const now = Date.now();
    if (now - this.lastForwardAt > ACTIVE_MS) return this.config.maxBatch;
    for (const [session, at] of this.lastSeen) if (now - at > ACTIVE_MS) this.lastSeen.delete(session);
    return Math.min(this.lastSeen.size, this.config.maxBatch);
  }

  private finish(s: Step, result: ShardStepResult, missed: boolean): void {
    this.running = this.running.filter((r) => r !== s);
    this.pool.unpin(s.req.session);
    if (missed) {
      this.misses++;
      this.pool.drop(s.req.session);
    }
    s.resolve(result);
  }

  private resultOf(s: Step): ShardStepResult {
    if (!this.last) return { kind: "hidden", hidden: s.output };
    return { kind: "logits", logits: s.req.allLogits ? s.output : s.lastLogits! };
  }

  /** One batched forward of the shard's layers over every scheduled step's next tokens. */
  private forward(items: { seq: Step; numTokens: number }[]): void {
    const { model, meter } = this.weights;
    const { nEmbd } = model.config;
    const total = items.reduce((n, i) => n + i.numTokens, 0);
    let x: Float32Array;
    if (model.range.first === 0) {
      x = model.embed(items.flatMap(({ seq, numTokens }) => seq.req.tokens!.slice(seq.done, seq.done + numTokens)));
    } else {
      x = new Float32Array(total * nEmbd);
      let at = 0;
      for (const { seq, numTokens } of items) {
        x.set(seq.req.hidden!.subarray(seq.done * nEmbd, (seq.done + numTokens) * nEmbd), at * nEmbd);
        at += numTokens;
      }
    }
    const before = meter.snapshot().weightBytes;
    const stage = items.map(({ seq, numTokens }) => ({ cache: seq.cache!, nTokens: numTokens }));
    model.forwardLayers(stage, x);
    if (this.last) this.project(items, x);
    else {
      let at = 0;
      for (const { seq, numTokens } of items) {
        seq.output.set(x.subarray(at * nEmbd, (at + numTokens) * nEmbd), seq.done * nEmbd);
        at += numTokens;
      }
    }
    this.forwards.push({ sessions: items.length, tokens: total, weightBytes: meter.snapshot().weightBytes - before });
    if (this.forwards.length > FORWARD_HISTORY) this.forwards.shift();
    for (const it of items) it.seq.done += it.numTokens;
  }

  /** Last shard: the logits the steps want (their last token's, or every token's), in one head matmul. */
  private project(items: { seq: Step; numTokens: number }[], x: Float32Array): void {
    const { model } = this.weights;
    const { nEmbd, nVocab } = model.config;
    const wanted: { seq: Step; from: number; numTokens: number; all: boolean }[] = [];
    let at = 0;
    for (const { seq, numTokens } of items) {
      const all = seq.req.allLogits === true;
      if (all || seq.done + numTokens === seq.req.nTokens) wanted.push({ seq, from: at, numTokens, all });
      at += numTokens;
    }
    if (wanted.length === 0) return;
    const rows = wanted.reduce((n, w) => n + w.numTokens, 0);
    const sub = new Float32Array(rows * nEmbd);
    let r = 0;
    for (const w of wanted) {
      sub.set(x.subarray(w.from * nEmbd, (w.from + w.numTokens) * nEmbd), r * nEmbd);
      r += w.numTokens;
    }
    const logits = model.logits(wanted.map((w) => ({ cache: w.seq.cache!, nTokens: w.numTokens, allLogits: w.all })), sub);
    wanted.forEach((w, i) => {
      const out = logits[i]!;
      if (w.all) w.seq.output.set(out, w.seq.done * nVocab);
      else w.seq.lastLogits = out.slice();
    });
  }
}
