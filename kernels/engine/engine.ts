/**
 * The serving engine: continuous batching of many requests on one model.
 *
 *   submit() ──► RequestQueue ──► Scheduler ──► StepExecutor ──► sample / detokenize / stop
 *                 (backpressure)   (which seqs,   (forwardBatch:     (per request, then stream
 *                                   how many       weights read       the delta to its
 *                                   tokens)        once per step)     async iterator)
 *
 * One loop runs steps back to back while there is work, yielding to the event loop between
 * steps so that new requests, disconnects and cancellations are noticed; a sequence joins or
 * leaves the batch at any step. A sequence's KV-cache is created when the scheduler admits it
 * and freed as soon as it finishes or is cancelled. Platform-neutral: no Node APIs, so it runs
 * in the Node origin and inside a Durable Object alike.
 */
import type { KVCache, KVType } from "../model/backend.ts";
import { Sampler, StopStringMatcher } from "../sampling/index.ts";
import { Channel } from "./channel.ts";
import { StepExecutor, type StepModel } from "./executor.ts";
import { RequestQueue } from "./queue.ts";
import { maxWaitBound, Scheduler, type SchedulableSeq, type SchedulerConfig } from "./scheduler.ts";
import {
  EngineClosedError,
  EngineOverloadedError,
  EngineRequestError,
  type EngineEvent,
  type EngineRequest,
  type FinishReason,
  type GenerationResult,
} from "./types.ts";

/** What the engine needs of a tokenizer (kernels/tokenizer's Tokenizer satisfies it). */
export interface EngineTokenizer {
  isEog(id: number): boolean;
  createStreamDecoder(): { push(id: number): string; flush(): string };
}

export interface EngineOptions {
  /** Text, stop strings and end-of-generation detection; without it requests yield token ids only. */
  tokenizer?: EngineTokenizer;
  /** false: every sequence of a step gets its own forward call (for comparison). Default true. */
  batching?: boolean;
  /** Sequences holding a KV-cache at once. Default 16. */
  maxRunning?: number;
  /** Sequences in one step. Default maxRunning. */
  maxBatchSeqs?: number;
  /** Tokens per step, all sequences together. Default 256 (at least maxBatchSeqs). */
  tokenBudget?: number;
  /** Prompt tokens of one sequence per step (chunked prefill). Default 128. */
  prefillChunk?: number;
  /** A running sequence unscheduled this many steps goes first. Default 4. */
  starvationSteps?: number;
  /** Requests waiting for a cache slot; more are refused as overloaded. Default 64. */
  maxQueue?: number;
  /** Largest prompt + max_tokens of one request. Default the model's training context. */
  nCtx?: number;
  kvType?: KVType;
  /** Bytes all KV-caches together may take; admission waits for room. Default unlimited. */
  kvBudgetBytes?: number;
  /** Called after each step (metrics, tests). */
  onStep?: (info: StepInfo) => void;
  /**
   * When work arrives at an idle engine, wait this long before the first step so that requests
   * arriving together start in one batch (issue 5's 2–5 ms window). Default 0: start at once.
   */
  batchWindowMs?: number;
  /** How the loop yields between steps; default setImmediate where it exists, else setTimeout(0). */
  yieldBetweenSteps?: () => Promise<void>;
}

export interface StepInfo {
  step: number;
  /** The sequences in the step and how many tokens each computed. */
  items: { id: string; numTokens: number; sampled: boolean }[];
  forwardCalls: number;
  ms: number;
}

export interface EngineStats {
  batching: boolean;
  steps: number;
  forwardCalls: number;
  /** Steps whose single forward call held more than one sequence. */
  batchedSteps: number;
  /** The most sequences one forward call held. */
  maxSeqsPerCall: number;
  /** Σ sequences over steps (÷ steps = mean batch). */
  seqSteps: number;
  promptTokensComputed: number;
  generatedTokens: number;
  running: number;
  waiting: number;
  submitted: number;
  completed: number;
  cancelled: number;
  failed: number;
  rejected: number;
  kvBytesLive: number;
  /** Mean step time, exponentially weighted (ms). */
  stepMs: number;
  /** The scheduler's bound on consecutive unscheduled steps for a running sequence. */
  maxWaitBound: number;
  /** The longest wait any sequence actually had. */
  maxWaitObserved: number;
}

/** A submitted request: iterate it for its events, await `result`, or cancel it. */
export interface RequestHandle extends AsyncIterable<EngineEvent> {
  readonly id: string;
  readonly result: Promise<GenerationResult>;
  cancel(): void;
}

class Sequence implements SchedulableSeq {
  lastScheduled = -1;
  admittedAt = -1;
  numComputed = 0;
  cache: KVCache | undefined;
  cacheBytes = 0;
  readonly tokens: number[];
  readonly generated: number[] = [];
  text = "";
  cancelled = false;
  done = false;
  firstScheduled = -1;
  maxWait = 0;
  maxBatch = 0;
  readonly decoder: { push(id: number): string; flush(): string } | undefined;
  readonly stops: StopStringMatcher | undefined;
  readonly channel: Channel<EngineEvent>;
  readonly result: Promise<GenerationResult>;
  resolve!: (r: GenerationResult) => void;
  reject!: (e: unknown) => void;
  detach: () => void = () => {};

  constructor(
    readonly id: string,
    readonly arrival: number,
    readonly queuedAt: number,
    readonly promptLength: number,
    prompt: readonly number[],
    readonly maxTokens: number,
    readonly nCtx: number,
    readonly sampler: Sampler,
    readonly ignoreEos: boolean,
    tokenizer: EngineTokenizer | undefined,
    stop: readonly string[],
    onReturn: () => void,
  ) {
    this.tokens = [...prompt];
    this.decoder = tokenizer?.createStreamDecoder();
    this.stops = tokenizer ? new StopStringMatcher(stop) : undefined;
    this.channel = new Channel(onReturn);
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.result.catch(() => {}); // the iterator reports it too; never an unhandled rejection
  }

  get numTokens(): number {
    return this.tokens.length;
  }

  summary(finish: FinishReason | null, currentStep: number): GenerationResult {
    return {
      id: this.id,
      finish,
      cancelled: this.cancelled,
      tokens: [...this.generated],
      text: this.text,
      promptTokens: this.promptLength,
      maxBatch: this.maxBatch,
      queuedSteps: (this.firstScheduled < 0 ? currentStep : this.firstScheduled) - this.queuedAt,
      maxWaitSteps: this.maxWait,
    };
  }
}

const defaultYield = (): Promise<void> =>
  typeof setImmediate === "function" ? new Promise((r) => setImmediate(r)) : new Promise((r) => setTimeout(r, 0));

export class Engine {
  readonly scheduler: Scheduler<Sequence>;
  readonly executor: StepExecutor;
  readonly nCtx: number;
  private readonly queue: RequestQueue<Sequence>;
  private running: Sequence[] = [];
  private loopActive = false;
  private closed = false;
  private arrivals = 0;
  private readonly s: EngineStats;
  private readonly kvBytesPerToken: number | undefined;

  constructor(
    readonly model: StepModel,
    private readonly opts: EngineOptions = {},
  ) {
    const maxRunning = opts.maxRunning ?? 16;
    const maxBatchSeqs = opts.maxBatchSeqs ?? maxRunning;
    const config: SchedulerConfig = {
      maxRunning,
      maxBatchSeqs,
      tokenBudget: opts.tokenBudget ?? Math.max(256, maxBatchSeqs),
      prefillChunk: opts.prefillChunk ?? 128,
      starvationSteps: opts.starvationSteps ?? 4,
    };
    this.scheduler = new Scheduler(config);
    this.queue = new RequestQueue(opts.maxQueue ?? 64);
    this.executor = new StepExecutor(model, opts.batching ?? true);
    this.nCtx = opts.nCtx ?? model.config.nCtxTrain;
    if (!Number.isInteger(this.nCtx) || this.nCtx < 1) throw new RangeError(`nCtx must be a positive integer, got ${this.nCtx}`);
    const c = model.config as { nLayer?: number; nHeadKv?: number; headDim?: number };
    if (c.nLayer && c.nHeadKv && c.headDim) this.kvBytesPerToken = 2 * c.nLayer * c.nHeadKv * c.headDim * (opts.kvType === "f16" ? 2 : 4);
    this.s = {
      batching: this.executor.batching,
      steps: 0,
      forwardCalls: 0,
      batchedSteps: 0,
      maxSeqsPerCall: 0,
      seqSteps: 0,
      promptTokensComputed: 0,
      generatedTokens: 0,
      running: 0,
      waiting: 0,
      submitted: 0,
      completed: 0,
      cancelled: 0,
      failed: 0,
      rejected: 0,
      kvBytesLive: 0,
      stepMs: 0,
      maxWaitBound: maxWaitBound(config),
      maxWaitObserved: 0,
    };
  }

  get batching(): boolean {
    return this.executor.batching;
  }

  stats(): EngineStats {
    return { ...this.s, running: this.running.length, waiting: this.queue.length };
  }

  /**
   * Queues a request. Throws EngineRequestError when it can never run, EngineOverloadedError
   * when the queue is full, EngineClosedError after close().
   */
  submit(req: EngineRequest): RequestHandle {
    if (this.closed) throw new EngineClosedError();
    const seq = this.validate(req);
    if (!this.queue.offer(seq)) {
      this.s.rejected++;
      throw new EngineOverloadedError(this.retryAfterMs(), this.queue.length, this.queue.limit);
    }
    this.s.submitted++;
    if (req.signal) {
      const signal = req.signal;
      const onAbort = () => this.cancel(seq);
      if (signal.aborted) this.cancel(seq);
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        seq.detach = () => signal.removeEventListener("abort", onAbort);
      }
    }
    this.kick();
    const channel = seq.channel;
    return {
      id: seq.id,
      result: seq.result,
      cancel: () => this.cancel(seq),
      [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator](),
    };
  }

  /** Refuses new requests and ends every queued and running one with EngineClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new EngineClosedError();
    for (const seq of [...this.queue.drain(), ...this.running]) this.fail(seq, err);
    this.running = [];
  }

  private validate(req: EngineRequest): Sequence {
    const { nVocab } = this.model.config;
    const prompt = req.prompt;
    if (!Array.isArray(prompt) || prompt.length === 0) throw new EngineRequestError("the prompt must hold at least one token", "invalid_prompt", "prompt");
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) throw new EngineRequestError(`token id ${id} is outside the vocabulary (0..${nVocab - 1})`, "invalid_prompt", "prompt");
    }
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new EngineRequestError(`max_tokens must be an integer ≥ 1, got ${req.maxTokens}`, "invalid_value", "max_tokens");
    if (prompt.length + req.maxTokens > this.nCtx) {
      throw new EngineRequestError(
        `This model's maximum context length is ${this.nCtx} tokens; the prompt has ${prompt.length} tokens and max_tokens is ${req.maxTokens} (${prompt.length + req.maxTokens} in all).`,
        "context_length_exceeded",
        "max_tokens",
      );
    }
    const stop = req.stop ?? [];
    if (stop.length > 0 && !this.opts.tokenizer) throw new EngineRequestError("stop strings need a tokenizer", "invalid_value", "stop");
    let sampler: Sampler;
    try {
      sampler = new Sampler(req.sampling ?? {}, nVocab);
      if (stop.some((s) => s.length === 0)) throw new RangeError("stop strings must not be empty");
    } catch (e) {
      throw new EngineRequestError(e instanceof Error ? e.message : String(e), "invalid_value", null);
    }
    const arrival = this.arrivals++;
    const nCtx = prompt.length + req.maxTokens - 1;
    const seq: Sequence = new Sequence(
      req.id ?? `seq-${arrival}`,
      arrival,
      this.scheduler.steps,
      prompt.length,
      prompt,
      req.maxTokens,
      Math.max(nCtx, prompt.length),
      sampler,
      req.ignoreEos ?? false,
      this.opts.tokenizer,
      stop,
      () => this.cancel(seq),
    );
    return seq;
  }

  private cancel(seq: Sequence): void {
    if (seq.done || seq.cancelled) return;
    seq.cancelled = true;
    // A queued request leaves at once; a running one at the next step boundary (a step in
    // progress cannot be interrupted, and its cache is in use until it ends).
    if (this.queue.removeWhere((s) => s === seq).length > 0) this.finish(seq, null);
    this.kick();
  }

  private kick(): void {
    if (this.loopActive || this.closed) return;
    this.loopActive = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    const yieldFn = this.opts.yieldBetweenSteps ?? defaultYield;
    // Never step inside submit(): requests submitted together (same tick, or within the
    // window) start in one batch, and the caller is not blocked by a forward pass.
    const windowMs = this.opts.batchWindowMs ?? 0;
    await (windowMs > 0 ? new Promise((r) => setTimeout(r, windowMs)) : yieldFn());
    try {
      while (!this.closed) {
        for (const seq of this.running.filter((s) => s.cancelled)) this.finish(seq, null);
        if (this.running.length === 0 && this.queue.length === 0) break;
        await this.step();
        await yieldFn();
      }
    } finally {
      this.loopActive = false;
    }
    // Work that arrived during the last yield.
    if (!this.closed && (this.running.length > 0 || this.queue.length > 0)) this.kick();
  }

  private canAdmit = (seq: Sequence): boolean => {
    const budget = this.opts.kvBudgetBytes;
    if (budget === undefined || this.kvBytesPerToken === undefined) return true;
    return this.s.kvBytesLive + seq.nCtx * this.kvBytesPerToken <= budget;
  };

  private async step(): Promise<void> {
    const plan = this.scheduler.schedule(this.running, this.queue, this.canAdmit);
    for (const seq of plan.admitted) {
      this.queue.shift();
      seq.cache = this.model.createCache({ nCtx: seq.nCtx, kvType: this.opts.kvType });
      seq.cacheBytes = seq.cache.bytes;
      this.s.kvBytesLive += seq.cacheBytes;
      this.running.push(seq);
    }
    if (plan.items.length === 0) return;

    // Fairness bookkeeping: how long each running sequence has gone unserved.
    const inStep = new Set(plan.items.map((i) => i.seq));
    for (const seq of this.running) {
      if (inStep.has(seq)) continue;
      const wait = plan.step - Math.max(seq.lastScheduled, seq.admittedAt - 1);
      if (wait > seq.maxWait) seq.maxWait = wait;
      if (wait > this.s.maxWaitObserved) this.s.maxWaitObserved = wait;
    }

    const started = performance.now();
    const inputs = plan.items.map(({ seq, numTokens }) => ({ cache: seq.cache!, tokens: seq.tokens.slice(seq.numComputed, seq.numComputed + numTokens) }));
    let out;
    try {
      out = await this.executor.execute(inputs);
    } catch (e) {
      for (const { seq } of plan.items) this.fail(seq, e);
      this.running = this.running.filter((s) => !s.done);
      return;
    }
    const ms = performance.now() - started;
    const perCall = this.executor.batching ? plan.items.length : 1;
    this.s.steps++;
    this.s.forwardCalls += out.forwardCalls;
    this.s.seqSteps += plan.items.length;
    if (out.forwardCalls === 1 && plan.items.length > 1) this.s.batchedSteps++;
    this.s.maxSeqsPerCall = Math.max(this.s.maxSeqsPerCall, perCall);
    this.s.stepMs = this.s.steps === 1 ? ms : 0.8 * this.s.stepMs + 0.2 * ms;

    const info: StepInfo = { step: plan.step, items: [], forwardCalls: out.forwardCalls, ms };
    plan.items.forEach(({ seq, numTokens }, i) => {
      if (seq.firstScheduled < 0) seq.firstScheduled = plan.step;
      seq.maxBatch = Math.max(seq.maxBatch, perCall);
      const wasPrompt = seq.numComputed < seq.promptLength;
      seq.numComputed += numTokens;
      if (wasPrompt) this.s.promptTokensComputed += Math.min(numTokens, seq.promptLength - (seq.numComputed - numTokens));
      const sampled = seq.numComputed === seq.tokens.length && !seq.cancelled;
      info.items.push({ id: seq.id, numTokens, sampled });
      if (sampled && !seq.done) this.advance(seq, out.logits[i]!);
    });
    this.running = this.running.filter((s) => !s.done);
    this.opts.onStep?.(info);
  }

  /** Samples the sequence's next token from its logits and streams what it adds. */
  private advance(seq: Sequence, logits: Float32Array): void {
    let token: number;
    try {
      token = seq.sampler.sample(logits, seq.tokens);
    } catch (e) {
      this.fail(seq, e);
      return;
    }
    seq.tokens.push(token);
    seq.generated.push(token);
    this.s.generatedTokens++;
    const tokenizer = this.opts.tokenizer;
    let finish: FinishReason | null = null;
    let text = "";
    if (tokenizer && !seq.ignoreEos && tokenizer.isEog(token)) {
      finish = "stop";
      text = seq.stops!.flush();
    } else if (seq.decoder && seq.stops) {
      const r = seq.stops.push(seq.decoder.push(token));
      text = r.text;
      if (r.stopped) finish = "stop";
    }
    if (finish === null && seq.generated.length >= seq.maxTokens) {
      finish = "length";
      if (seq.decoder && seq.stops) {
        const tail = seq.stops.push(seq.decoder.flush());
        text += tail.stopped ? tail.text : tail.text + seq.stops.flush();
        if (tail.stopped) finish = "stop";
      }
    }
    seq.text += text;
    seq.channel.push({ type: "delta", tokens: [token], text });
    if (finish !== null) this.finish(seq, finish);
  }

  private releaseCache(seq: Sequence): void {
    if (!seq.cache) return;
    (seq.cache as { dispose?: () => void }).dispose?.();
    seq.cache = undefined;
    this.s.kvBytesLive -= seq.cacheBytes;
    seq.cacheBytes = 0;
  }

  private finish(seq: Sequence, reason: FinishReason | null): void {
    if (seq.done) return;
    seq.done = true;
    seq.detach();
    this.releaseCache(seq);
    this.running = this.running.filter((s) => s !== seq);
    if (seq.cancelled && reason === null) this.s.cancelled++;
    else this.s.completed++;
    const result = seq.summary(reason, this.scheduler.steps);
    seq.channel.push({ type: "done", result });
    seq.channel.close();
    seq.resolve(result);
  }

  private fail(seq: Sequence, error: unknown): void {
    if (seq.done) return;
    seq.done = true;
    seq.detach();
    this.releaseCache(seq);
    this.s.failed++;
    seq.channel.fail(error);
    seq.reject(error);
  }

  /** When a cache slot is likely to free: the running sequence closest to its end, at the current step rate. */
  private retryAfterMs(): number {
    const { prefillChunk, maxRunning } = this.scheduler.config;
    let soonest = Infinity;
    for (const s of this.running) {
      const left = s.maxTokens - s.generated.length + Math.ceil(Math.max(0, s.promptLength - s.numComputed) / prefillChunk);
      soonest = Math.min(soonest, left);
    }
    if (!Number.isFinite(soonest)) soonest = 1;
    const rounds = Math.ceil((this.queue.length + 1) / maxRunning);
    return Math.min(60_000, Math.max(1000, (this.s.stepMs || 10) * soonest * rounds));
  }
}
