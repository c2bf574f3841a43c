/**
 * Streaming output moderation. Text pieces (tokens) go in; text that is safe to release comes
 * out. The guard holds back the last `windowChars` characters, and every `stepChars` new
 * characters it checks everything it has not released yet (rules, PII, classifier). When a
 * check blocks, the stream stops and nothing more is released.
 *
 * Guarantees (tested by tests/moderation-output-guard.test.ts):
 *  - no character of a flagged span is ever released: rule and PII spans are exact, a
 *    classifier span is the checked window, and every check reads unreleased text only;
 *  - a rule/PII match of at most `windowChars` characters is always seen whole: it can never
 *    straddle the release point, because the release point trails the newest text by at least
 *    `windowChars` (longer matches, e.g. unbounded custom patterns, are not covered);
 *  - without redactions, the released text followed by the withheld text is exactly the
 *    text pushed so far (released = input[0, withheld.start)).
 * Redact-action hits (PII) are replaced by their placeholder in the released text; the release
 * point never cuts through one.
 */
import { CATEGORIES } from "./taxonomy.ts";
import { type ModerationPolicy, categoryAction } from "./policy.ts";
import { type RuleHit, findRuleHits, redactText } from "./rules.ts";
import { scoringSpans } from "./features.ts";
import type { ModerationDecision, ModerationEngines } from "./pipeline.ts";

export interface OutputGuardOptions {
  policy: ModerationPolicy;
  /** the classifier is used; the judge and the external endpoint are not run per window */
  engines?: Pick<ModerationEngines, "classifier">;
  /** override policy.output.windowChars / stepChars */
  windowChars?: number;
  stepChars?: number;
}

export interface Span {
  start: number;
  end: number;
}

export type GuardStep =
  | { stop: false; text: string }
  | {
      stop: true;
      /** released together with the stop (always "") */
      text: string;
      decisions: ModerationDecision[];
      /** the flagged span, in offsets of the pushed text */
      flagged: Span;
      /** everything not released: [released input length, pushed length) */
      withheld: Span;
    };

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

export class OutputGuard {
  private readonly policy: ModerationPolicy;
  private readonly engines: Pick<ModerationEngines, "classifier">;
  readonly windowChars: number;
  readonly stepChars: number;
  private pending = "";
  /** input offset of pending[0] = input characters released so far */
  private base = 0;
  private stopStep?: Extract<GuardStep, { stop: true }>;
  private readonly seen = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  /** every decision so far (flags, redactions, the block) */
  readonly decisions: ModerationDecision[] = [];

  constructor(opts: OutputGuardOptions) {
    this.policy = opts.policy;
    this.engines = opts.engines ?? {};
    this.windowChars = opts.windowChars ?? opts.policy.output.windowChars;
    this.stepChars = opts.stepChars ?? opts.policy.output.stepChars;
    if (!(this.windowChars >= 1) || !(this.stepChars >= 1)) throw new Error("OutputGuard: windowChars and stepChars must be ≥ 1");
  }

  get stopped(): boolean {
    return this.stopStep !== undefined;
  }

  /** input characters released so far */
  get releasedChars(): number {
    return this.base;
  }

  /** Add a piece of generated text; resolves to the text that may be sent now. */
  push(piece: string): Promise<GuardStep> {
    return this.serial(async () => {
      if (this.stopStep) return this.stopStep; // stopped: nothing more is read or released
      this.pending += piece;
      if (!this.policy.output.enabled) return this.releaseAll();
      if (this.pending.length < this.windowChars + this.stepChars) return { stop: false, text: "" };
      return this.check(false);
    });
  }

  /** The generation ended: check and release the tail. */
  finish(): Promise<GuardStep> {
    return this.serial(async () => {
      if (this.stopStep) return this.stopStep;
      if (!this.policy.output.enabled) return this.releaseAll();
      return this.check(true);
    });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const job = this.chain.then(f);
    this.chain = job.catch(() => undefined);
    return job;
  }

  private releaseAll(): GuardStep {
    const text = this.pending;
    this.base += text.length;
    this.pending = "";
    return { stop: false, text };
  }

  private record(key: string, d: ModerationDecision): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.decisions.push(d);
  }

  private halt(flagged: Span, decisions: ModerationDecision[]): GuardStep {
    this.decisions.push(...decisions);
    this.stopStep = { stop: true, text: "", decisions, flagged, withheld: { start: this.base, end: this.base + this.pending.length } };
    return this.stopStep;
  }

  private async check(final: boolean): Promise<GuardStep> {
    const text = this.pending;
    const base = this.base;
    const keepText = this.policy.logging.includeFlaggedText;
    let hits: RuleHit[] = [];
    if (text.length > 0 && this.policy.checks.rules) {
      hits = findRuleHits(text, this.policy).filter((h) => !h.category || categoryAction(this.policy, h.category) !== "off");
      const blocks = hits.filter((h) => h.action === "block");
      if (blocks.length) {
        const first = blocks[0]!;
        return this.halt(
          { start: base + first.start, end: base + first.end },
          blocks.map((h) => ({
            check: h.check,
            category: h.label,
            action: "block",
            ruleId: h.ruleId,
            span: { start: base + h.start, end: base + h.end },
            ...(keepText ? { text: text.slice(h.start, h.end) } : {}),
          })),
        );
      }
      for (const h of hits) {
        if (h.action === "flag" || (h.action === "redact" && h.end <= text.length - (final ? 0 : this.windowChars))) {
          this.record(`${h.ruleId}@${base + h.start}`, { check: h.check, category: h.label, action: h.action, ruleId: h.ruleId, span: { start: base + h.start, end: base + h.end } });
        }
      }
    }
    const clf = this.engines.classifier;
    if (text.trim().length > 0 && this.policy.checks.classifier && clf) {
      try {
        const spans = scoringSpans(text, this.policy.classifier.chunkChars);
        const rows = await clf.score(spans.map(([a, b]) => text.slice(a, b)));
        const blocks: ModerationDecision[] = [];
        let flaggedSpan: Span | undefined;
        rows.forEach((row, k) => {
          const [a, b] = spans[k]!;
          for (const c of CATEGORIES) {
            const act = categoryAction(this.policy, c);
            const threshold = this.policy.categories[c]?.threshold ?? clf.info.thresholds[c];
            if (act === "off" || row[c] < threshold) continue;
            const d: ModerationDecision = { check: "classifier", category: c, action: act, score: row[c], threshold, span: { start: base + a, end: base + b }, ...(keepText ? { text: text.slice(a, b) } : {}) };
            if (act === "block") {
              blocks.push(d);
              flaggedSpan ??= { start: base + a, end: base + b };
            } else this.record(`classifier:${c}`, d);
          }
        });
        if (blocks.length) return this.halt(flaggedSpan!, blocks);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        if (this.policy.onCheckError === "block") {
          return this.halt({ start: base, end: base + text.length }, [{ check: "classifier", category: "error", action: "block", error }]);
        }
        this.record("classifier:error", { check: "classifier", category: "error", action: "allow", error });
      }
    }
    // release everything beyond the window, never cutting through a redaction or a surrogate pair
    let releaseTo = final ? text.length : text.length - this.windowChars;
    for (let changed = true; changed; ) {
      changed = false;
      for (const h of hits) {
        if (h.action === "redact" && h.start < releaseTo && h.end > releaseTo) {
          releaseTo = h.start;
          changed = true;
        }
      }
    }
    if (releaseTo > 0 && releaseTo < text.length && isHighSurrogate(text.charCodeAt(releaseTo - 1))) releaseTo--;
    if (releaseTo <= 0) return { stop: false, text: "" };
    const out = redactText(text.slice(0, releaseTo), hits.filter((h) => h.end <= releaseTo));
    this.pending = text.slice(releaseTo);
    this.base += releaseTo;
    return { stop: false, text: out };
  }
}
