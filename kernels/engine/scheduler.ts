/**
 * The scheduler: which sequences run in the next forward step, and how many of their tokens.
 * Modelled on vLLM v1: there are no separate "prefill" and "decode" phases, only sequences whose
 * known tokens (prompt + generated) run ahead of what their KV-cache holds; every step gives
 * each chosen sequence a number of those tokens to compute, within a token budget. A decoding
 * sequence needs exactly one; a prompt needs many and is fed in chunks, so a long prompt shares
 * steps with the decodes of others instead of stalling them (chunked prefill). Sequences join and
 * leave between any two steps (iteration-level scheduling).
 *
 * Order of service within a step (at most maxBatchSeqs sequences, tokenBudget tokens):
 *   1. the starving: running sequences left unscheduled for `starvationSteps` steps or more,
 *      longest wait first; then queued requests waiting that long, admitted in queue order when
 *      a slot (and memory) is free;
 *   2. decodes (one token each), least recently served first;
 *   3. prefill chunks, least recently served first, each at most `prefillChunk` tokens of what
 *      is left of the budget;
 *   4. queued requests, first come first served, while a slot (and memory) is free.
 * Every chosen sequence gets at least one token, so the longest-waiting starving sequence is
 * served every step; that bounds how long any running sequence waits (`maxWaitBound`), and a
 * queued request waits only for a free slot, never behind prompts that keep eating the budget.
 *
 * Pure logic over plain numbers: no model, no clock, no I/O — tested on its own.
 */

export interface SchedulerConfig {
  /** Sequences holding a KV-cache at once (running). */
  maxRunning: number;
  /** Sequences in one forward step; 1 disables batching. */
  maxBatchSeqs: number;
  /** Tokens computed in one forward step, all sequences together (≥ maxBatchSeqs). */
  tokenBudget: number;
  /** Prompt tokens of one sequence in one step. */
  prefillChunk: number;
  /** A running sequence unscheduled for this many steps is served before any other. */
  starvationSteps: number;
}

/** What the scheduler needs to know of a sequence. */
export interface SchedulableSeq {
  /** Tokens known (prompt + generated). */
  readonly numTokens: number;
  /** Tokens whose K/V the cache holds. */
  readonly numComputed: number;
  /** Step at which it was last scheduled; −1 if never. */
  lastScheduled: number;
  /** Step at which it started running (got its cache). */
  admittedAt: number;
  /** Submission order: ties are broken first come first served. */
  readonly arrival: number;
  /** Step count when it was queued (the scheduler's `steps` at submission). */
  readonly queuedAt: number;
}

export interface ScheduledItem<S> {
  seq: S;
  /** Tokens to compute this step: seq's tokens [numComputed, numComputed + numTokens). */
  numTokens: number;
}

export interface SchedulerOutput<S> {
  step: number;
  /** Waiting requests that start running this step (the caller gives them a cache). */
  admitted: S[];
  /** The forward step, in a deterministic order. */
  items: ScheduledItem<S>[];
}

export function validateSchedulerConfig(c: SchedulerConfig): SchedulerConfig {
  const int = (name: keyof SchedulerConfig, min: number) => {
    const v = c[name];
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
  };
  int("maxRunning", 1);
  int("maxBatchSeqs", 1);
  int("tokenBudget", 1);
  int("prefillChunk", 1);
  int("starvationSteps", 1);
  if (c.tokenBudget < c.maxBatchSeqs) {
    throw new RangeError(`tokenBudget (${c.tokenBudget}) must be ≥ maxBatchSeqs (${c.maxBatchSeqs}) so that every scheduled sequence gets a token`);
  }
  return c;
}

/**
 * The most consecutive steps a running sequence can go unscheduled. After `starvationSteps`
 * missed steps it is starving; starving running sequences come before anything else, longest
 * wait first, and the first of them is always served. Only sequences already unserved for
 * longer than it can go before it — fewer than maxRunning, and never a newcomer — so it is
 * served within maxRunning − 1 further steps.
 */
export function maxWaitBound(c: SchedulerConfig): number {
  return c.starvationSteps + c.maxRunning - 1;
}

export class Scheduler<S extends SchedulableSeq> {
  readonly config: SchedulerConfig;
  private stepNo = 0;

  constructor(config: SchedulerConfig) {
    this.config = validateSchedulerConfig({ ...config });
  }

  /** Steps planned so far. */
  get steps(): number {
    return this.stepNo;
  }

  /**
   * Plans the next step. `running`: sequences holding a cache (finished ones already removed).
   * `waiting`: the queue, in order; admission takes from its front only. `canAdmit` says whether
   * memory allows one more cache for that request (admission stops at the first refusal, so a
   * big request at the head is never overtaken).
   */
  schedule(running: readonly S[], waiting: Iterable<S>, canAdmit: (seq: S) => boolean = () => true): SchedulerOutput<S> {
    const { maxRunning, maxBatchSeqs, tokenBudget, prefillChunk, starvationSteps } = this.config;
    const step = this.stepNo++;
    let budget = tokenBudget;
    let nRunning = running.length;
    const items: ScheduledItem<S>[] = [];
    const admitted: S[] = [];
    const chosen = new Set<S>();

    const pending = (s: S) => s.numTokens - s.numComputed;
    const runningWait = (s: S) => step - Math.max(s.lastScheduled, s.admittedAt - 1) - 1;
    const queuedWait = (s: S) => step - s.queuedAt;
    const full = () => items.length >= maxBatchSeqs || budget === 0;
    const take = (seq: S) => {
      const n = Math.min(pending(seq), prefillChunk, budget);
      items.push({ seq, numTokens: n });
      chosen.add(seq);
      budget -= n;
    };

    // The queue is consumed from its front only, in order.
    const queue = waiting[Symbol.iterator]();
    let head: S | undefined = queue.next().value;
    let admissionClosed = false;
    const admitHead = (): boolean => {
      const seq = head!;
      if (nRunning >= maxRunning || !canAdmit(seq)) {
        admissionClosed = true;
        return false;
      }
      seq.admittedAt = step;
      admitted.push(seq);
      nRunning++;
      take(seq);
      head = queue.next().value;
      return true;
    };

    // 1. The starving: running sequences longest wait first (they hold caches; finishing them
    //    frees memory), then queued requests in queue order.
    const starving = running
      .filter((s) => pending(s) > 0 && runningWait(s) >= starvationSteps)
      .sort((a, b) => runningWait(b) - runningWait(a) || a.arrival - b.arrival);
    for (const seq of starving) {
      if (full()) break;
      take(seq);
    }
    while (!full() && head && !admissionClosed && queuedWait(head) >= starvationSteps) admitHead();

    // 2–3. Decodes, then prefill chunks, least recently served first.
    const rest = running
      .filter((s) => pending(s) > 0 && !chosen.has(s))
      .sort((a, b) => Number(pending(a) > 1) - Number(pending(b) > 1) || a.lastScheduled - b.lastScheduled || a.arrival - b.arrival);
    for (const seq of rest) {
      if (full()) break;
      take(seq);
    }

    // 4. Queued requests, first come first served.
    while (!full() && head && !admissionClosed) admitHead();

    for (const it of items) it.seq.lastScheduled = step;
    return { step, admitted, items };
  }
}
