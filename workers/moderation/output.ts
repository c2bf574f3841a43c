/**
 * Output moderation of a generation: the kernel's OutputGuard (held-back window, rules, PII,
 * classifier per window) with the generated token ids kept in step with the released text, and
 * for non-stream replies a check of the whole text before anything is released. A stop means:
 * end generation, release nothing more, finish with `content_filter`.
 *
 * Used by the SessionDO (edge generation) and by the worker for routed models (guardRouteEvents),
 * so both paths give the same guarantee: no character of a flagged span is released.
 */
import { moderateText, OutputGuard, type ModerationEngines, type ModerationPolicy } from "../../kernels/moderation/index.ts";
import type { RouteEvent } from "../routing/index.ts";
import type { Env } from "../env.ts";
import { classifierEngine } from "./engines.ts";
import { logModeration, type ModerationLogContext } from "./log.ts";
import { checksOutput } from "./policy.ts";

/** Text cleared for sending and the token ids whose text lies wholly within what is released so far. */
export interface Release {
  text: string;
  tokens: number[];
}

export class GuardedOutput {
  private readonly guard: OutputGuard;
  /** tokens not yet released, with the input offsets of the piece they came with */
  private queue: { token: number; start: number; end: number }[] = [];
  private pushed = "";
  private held: Release = { text: "", tokens: [] };
  /** token ids taken off the queue so far, released or withheld (for `decode`) */
  private takenIds: number[] = [];
  private takenChars = 0;
  private stopped = false;
  private readonly started = Date.now();

  private constructor(
    private readonly policy: ModerationPolicy,
    private readonly engines: Pick<ModerationEngines, "classifier">,
    /** non-stream: release nothing until the whole text has passed */
    private readonly whole: boolean,
    private readonly log: ModerationLogContext,
    /**
     * The text of generated ids, when the host has the tokenizer (the SessionDO): a token is then
     * released only once its whole text is. Without it (routed models), the ids that came with a
     * piece are released with that piece. Ids whose text overlaps a redaction are never released.
     */
    private readonly decode?: (ids: number[]) => string,
  ) {
    this.guard = new OutputGuard({ policy, engines });
  }

  /** The guard for a reply under this policy, or undefined when the policy does not moderate output. */
  static async create(
    env: Env,
    policy: ModerationPolicy | undefined,
    opts: { stream: boolean; tenant: string; requestId: string; decode?: (ids: number[]) => string },
  ): Promise<GuardedOutput | undefined> {
    if (!policy || !checksOutput(policy)) return undefined;
    return new GuardedOutput(policy, await classifierEngine(env, policy), !opts.stream, { direction: "output", tenant: opts.tenant, requestId: opts.requestId }, opts.decode);
  }

  get filtered(): boolean {
    return this.stopped;
  }

  /** A generated piece; resolves to what may be sent now, or null: stop generating (content_filter). */
  async push(text: string, tokens: readonly number[] = []): Promise<Release | null> {
    if (this.stopped) return null;
    const start = this.pushed.length;
    this.pushed += text;
    for (const token of tokens) this.queue.push({ token, start, end: this.pushed.length });
    return this.release(await this.guard.push(text), false);
  }

  /** Generation ended: the tail (and for non-stream replies the whole text) checked; null: content_filter. */
  async finish(): Promise<Release | null> {
    if (this.stopped) return null;
    const tail = await this.release(await this.guard.finish(), true);
    if (tail === null || !this.whole) return tail;
    const whole = await moderateText(this.policy, this.pushed, this.engines, { direction: "output" });
    if (whole.action === "block") return this.stop(whole.decisions.filter((d) => d.action === "block"));
    this.done(this.guard.decisions);
    return tail;
  }

  private async release(step: Awaited<ReturnType<OutputGuard["push"]>>, final: boolean): Promise<Release | null> {
    if (step.stop) return this.stop(step.decisions);
    const tokens = this.take(final ? Infinity : this.guard.releasedChars);
    if (!this.whole) {
      if (final) this.done(this.guard.decisions);
      return { text: step.text, tokens };
    }
    this.held = { text: this.held.text + step.text, tokens: [...this.held.tokens, ...tokens] };
    return final ? this.held : { text: "", tokens: [] };
  }

  /** Takes the queued tokens whose text lies within the first `upTo` characters; returns those not touched by a redaction. */
  private take(upTo: number): number[] {
    const out: number[] = [];
    while (this.queue.length > 0) {
      const q = this.queue[0]!;
      let { start, end } = q;
      if (this.decode) {
        start = this.takenChars;
        end = this.decode([...this.takenIds, q.token]).length;
      }
      if (end > upTo) break;
      this.queue.shift();
      this.takenIds.push(q.token);
      this.takenChars = end;
      if (!this.guard.decisions.some((d) => d.action === "redact" && d.span && d.span.start < end && start < d.span.end)) out.push(q.token);
    }
    return out;
  }

  private stop(blocking: Parameters<typeof logModeration>[1]): null {
    this.stopped = true;
    this.queue = [];
    this.held = { text: "", tokens: [] };
    const flags = this.guard.decisions.filter((d) => !blocking.includes(d));
    logModeration(this.policy, [...flags, ...blocking], this.log, { action: "block", checks: this.checks(), ms: Date.now() - this.started });
    return null;
  }

  private done(decisions: Parameters<typeof logModeration>[1]): void {
    logModeration(this.policy, decisions, this.log, { action: "allow", checks: this.checks(), ms: Date.now() - this.started });
  }

  private checks(): string[] {
    return [...(this.policy.checks.rules ? ["rules"] : []), ...(this.policy.checks.classifier && this.engines.classifier ? ["classifier"] : [])];
  }
}

/** A routed model's events through the guard: released deltas, and on a hit an `end` with content_filter (the upstream is closed). */
export async function* guardRouteEvents(events: AsyncIterable<RouteEvent>, guard: GuardedOutput): AsyncGenerator<RouteEvent, void, undefined> {
  const emit = (r: Release): RouteEvent[] => (r.text.length > 0 || r.tokens.length > 0 ? [{ type: "delta", text: r.text, ...(r.tokens.length > 0 && { tokenIds: r.tokens }) }] : []);
  for await (const ev of events) {
    if (ev.type === "delta") {
      const released = await guard.push(ev.text, ev.tokenIds);
      if (released === null) {
        yield { type: "end", finishReason: "content_filter" };
        return; // leaving the loop closes the upstream
      }
      yield* emit(released);
    } else if (ev.type === "end") {
      const tail = await guard.finish();
      if (tail === null) {
        yield { type: "end", finishReason: "content_filter", ...(ev.usage && { usage: ev.usage }) };
        return;
      }
      yield* emit(tail);
      yield ev;
    } else {
      yield ev; // the upstream broke: what was released stands, the rest is dropped
    }
  }
}
