/**
 * The serving engine's public types: what a request asks for, what it streams back, and the
 * typed errors a front end maps to HTTP (overloaded → 429 with Retry-After, a request that
 * cannot fit → 400, engine closed → 503).
 */
import type { SamplingParams } from "../sampling/index.ts";

export interface EngineRequest {
  /** Prompt token ids (already tokenized; the engine never adds BOS). At least one. */
  prompt: readonly number[];
  /** Upper bound on generated tokens (≥ 1). */
  maxTokens: number;
  /** Sampling parameters; unset → the sampler's defaults (temperature 1). */
  sampling?: SamplingParams;
  /** Stop strings (OpenAI semantics: the text before the stop is returned). Needs a tokenizer. */
  stop?: readonly string[];
  /** Keep generating past end-of-generation tokens. */
  ignoreEos?: boolean;
  /** Aborting it cancels the request (same as `handle.cancel()`). */
  signal?: AbortSignal;
  /** A label for logs and stats; a counter is used when absent. */
  id?: string;
}

/** null: cancelled, or failed. */
export type FinishReason = "stop" | "length";

export interface GenerationResult {
  id: string;
  finish: FinishReason | null;
  cancelled: boolean;
  /** Every generated token (including the one that ended generation, e.g. EOS or the stop's last token). */
  tokens: number[];
  /** The text released to the client (stop strings and what follows them excluded). */
  text: string;
  promptTokens: number;
  /** The most sequences that shared one forward call with this request (1 when never batched). */
  maxBatch: number;
  /** Engine steps between submission and the first scheduled step (time spent queued). */
  queuedSteps: number;
  /** Largest number of consecutive engine steps this request sat unscheduled while it held a cache. */
  maxWaitSteps: number;
}

/** One increment of a request's output. `text` may be empty (held back for a stop string or an incomplete character). */
export interface EngineDelta {
  type: "delta";
  tokens: number[];
  text: string;
}

export interface EngineDone {
  type: "done";
  result: GenerationResult;
}

export type EngineEvent = EngineDelta | EngineDone;

/** The waiting queue is full: retry after `retryAfterMs`. */
export class EngineOverloadedError extends Error {
  override name = "EngineOverloadedError";
  readonly code = "overloaded";
  constructor(
    readonly retryAfterMs: number,
    readonly queued: number,
    readonly limit: number,
  ) {
    super(`the engine is overloaded: ${queued} requests are already waiting (limit ${limit}); retry in ${Math.ceil(retryAfterMs / 1000)} s`);
  }

  /** Whole seconds for a Retry-After header (at least 1). */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }
}

/** The request can never run as given (empty prompt, bad id, context overflow, bad sampling parameter). */
export class EngineRequestError extends Error {
  override name = "EngineRequestError";
  constructor(
    message: string,
    readonly code: "invalid_prompt" | "context_length_exceeded" | "invalid_value",
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** The engine was closed while the request waited or ran. */
export class EngineClosedError extends Error {
  override name = "EngineClosedError";
  constructor() {
    super("the engine was shut down");
  }
}
