/**
 * The input moderation pipeline: checks in order of cost — rules (blocklists, patterns, PII)
 * → classifier → LLM judge → external /v1/moderations — stopping at the first block unless
 * `exhaustive` is set (the /v1/moderations route wants every score).
 */
import { CATEGORIES, type Category, type CategoryMap, categoryMap } from "./taxonomy.ts";
import { type ModerationPolicy, categoryAction } from "./policy.ts";
import { findRuleHits, redactText } from "./rules.ts";
import { scoringSpans } from "./features.ts";
import type { ModerationClassifier } from "./classifier.ts";
import type { JudgeFn } from "./judge.ts";
import { type ExternalModerator, createExternalModerator } from "./external.ts";

export type ContentPart = { type: "text"; text: string } | { type: string; [k: string]: unknown };

/** An OpenAI-style chat message; fields other than role/content pass through untouched. */
export interface ChatMessage {
  role: string;
  content?: string | ContentPart[] | null;
  [k: string]: unknown;
}

export interface ModerationEngines {
  classifier?: ModerationClassifier;
  judge?: JudgeFn;
  /** an external moderator; if absent and the policy names an endpoint, one is made with `fetch`/`externalApiKey` */
  external?: ExternalModerator;
  fetch?: typeof fetch;
  externalApiKey?: string;
}

export type CheckName = "rules" | "pii" | "classifier" | "judge" | "external";

export interface ModerationDecision {
  check: CheckName;
  /** an OpenAI category, "pii/<kind>", "custom" (a rule without category), or "error" */
  category: string;
  /** allow: recorded only (a failed optional check under onCheckError "allow") */
  action: "block" | "flag" | "redact" | "allow";
  ruleId?: string;
  score?: number;
  threshold?: number;
  messageIndex?: number;
  /** UTF-16 offsets in the message's text (in the stream, for the output guard) */
  span?: { start: number; end: number };
  /** the flagged text — only when policy.logging.includeFlaggedText */
  text?: string;
  error?: string;
}

export interface ModerationResult {
  action: "allow" | "block";
  /** any category flagged (block or flag), or any block */
  flagged: boolean;
  /** per category: flagged by some check under an action other than "off" */
  categories: CategoryMap<boolean>;
  /** per category: the highest score any check gave (rule, judge hits count as 1) */
  scores: CategoryMap<number>;
  /** the messages with redactions applied (same length and order as the input) */
  redactedMessages: ChatMessage[];
  decisions: ModerationDecision[];
  /** the checks that ran, in order */
  checks: CheckName[];
  /** milliseconds per check */
  timings: Partial<Record<CheckName, number>>;
}

export interface ModerateOptions {
  /** run every enabled check even after a block (default false) */
  exhaustive?: boolean;
  /** what the judge is told it reviews (default "input") */
  direction?: "input" | "output";
  /** the roles to read (default policy.inputRoles) */
  roles?: readonly string[];
}

interface Segment {
  messageIndex: number;
  /** index in a content-part array, or -1 for string content */
  partIndex: number;
  role: string;
  text: string;
  redacted: string;
}

const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

function segmentsOf(messages: readonly ChatMessage[], roles: readonly string[]): Segment[] {
  const out: Segment[] = [];
  messages.forEach((m, messageIndex) => {
    if (!roles.includes(m.role)) return;
    if (typeof m.content === "string") out.push({ messageIndex, partIndex: -1, role: m.role, text: m.content, redacted: m.content });
    else if (Array.isArray(m.content)) {
      m.content.forEach((p, partIndex) => {
        if (p && p.type === "text" && typeof (p as { text?: unknown }).text === "string") {
          const text = (p as { text: string }).text;
          out.push({ messageIndex, partIndex, role: m.role, text, redacted: text });
        }
      });
    }
  });
  return out;
}

function rebuild(messages: readonly ChatMessage[], segments: readonly Segment[]): ChatMessage[] {
  const changed = segments.filter((s) => s.redacted !== s.text);
  if (!changed.length) return messages.map((m) => ({ ...m }));
  return messages.map((m, i) => {
    const mine = changed.filter((s) => s.messageIndex === i);
    if (!mine.length) return { ...m };
    if (typeof m.content === "string") return { ...m, content: mine[0]!.redacted };
    const parts = (m.content as ContentPart[]).map((p, j) => {
      const s = mine.find((x) => x.partIndex === j);
      return s ? { ...p, text: s.redacted } : p;
    });
    return { ...m, content: parts };
  });
}

const clip = (s: string) => (s.length > 2000 ? `${s.slice(0, 2000)}…` : s);

export async function moderateInput(
  policy: ModerationPolicy,
  messages: readonly ChatMessage[],
  engines: ModerationEngines = {},
  options: ModerateOptions = {},
): Promise<ModerationResult> {
  const segments = segmentsOf(messages, options.roles ?? policy.inputRoles);
  const decisions: ModerationDecision[] = [];
  const categories = categoryMap(() => false);
  const scores = categoryMap(() => 0);
  const checks: CheckName[] = [];
  const timings: Partial<Record<CheckName, number>> = {};
  const keepText = policy.logging.includeFlaggedText;
  let blocked = false;

  const raise = (c: Category, score: number) => {
    scores[c] = Math.max(scores[c], score);
  };
  const onCategory = (check: CheckName, c: Category, extra: Partial<ModerationDecision>) => {
    const act = categoryAction(policy, c);
    if (act === "off") return;
    categories[c] = true;
    decisions.push({ check, category: c, action: act, ...extra });
    if (act === "block") blocked = true;
  };
  const onError = (check: CheckName, e: unknown) => {
    const action = policy.onCheckError === "block" ? "block" : "allow";
    decisions.push({ check, category: "error", action, error: e instanceof Error ? e.message : String(e) });
    if (action === "block") blocked = true;
  };
  const done = () => blocked && !options.exhaustive;

  // 1. rules and PII
  if (policy.checks.rules) {
    const t0 = now();
    checks.push("rules");
    for (const seg of segments) {
      // a rule tagged with a category the policy turns off is off too
      const hits = findRuleHits(seg.text, policy).filter((h) => !h.category || categoryAction(policy, h.category) !== "off");
      for (const h of hits) {
        const d: ModerationDecision = { check: h.check, category: h.label, action: h.action, ruleId: h.ruleId, messageIndex: seg.messageIndex, span: { start: h.start, end: h.end } };
        if (keepText) d.text = seg.text.slice(h.start, h.end);
        if (h.category && h.action !== "redact") {
          categories[h.category] = true;
          raise(h.category, 1);
        }
        decisions.push(d);
        if (h.action === "block") blocked = true;
      }
      seg.redacted = redactText(seg.text, hits);
    }
    timings.rules = now() - t0;
  }

  // 2. classifier
  if (!done() && policy.checks.classifier && engines.classifier) {
    const t0 = now();
    checks.push("classifier");
    const clf = engines.classifier;
    try {
      const chunks: { seg: number; text: string }[] = [];
      segments.forEach((s, i) => {
        if (s.redacted.trim()) for (const [a, b] of scoringSpans(s.redacted, policy.classifier.chunkChars)) chunks.push({ seg: i, text: s.redacted.slice(a, b) });
      });
      const rows = chunks.length ? await clf.score(chunks.map((c) => c.text)) : [];
      const best = categoryMap(() => ({ score: 0, seg: -1, chunk: -1 }));
      rows.forEach((row, k) => {
        for (const c of CATEGORIES) {
          if (row[c] > best[c].score) best[c] = { score: row[c], seg: chunks[k]!.seg, chunk: k };
        }
      });
      for (const c of CATEGORIES) {
        const { score, seg, chunk } = best[c];
        raise(c, score);
        const threshold = policy.categories[c]?.threshold ?? clf.info.thresholds[c];
        if (seg >= 0 && score >= threshold) {
          onCategory("classifier", c, { score, threshold, messageIndex: segments[seg]!.messageIndex, ...(keepText ? { text: clip(chunks[chunk]!.text) } : {}) });
        }
      }
    } catch (e) {
      onError("classifier", e);
    }
    timings.classifier = now() - t0;
  }

  // 3. LLM judge
  if (!done() && policy.checks.judge && engines.judge) {
    const t0 = now();
    checks.push("judge");
    try {
      const asked = (policy.judge.categories ?? CATEGORIES).filter((c) => categoryAction(policy, c) !== "off");
      const conversation = segments.map((s) => ({ role: s.role, text: s.redacted }));
      const lastIndex = segments.length ? segments[segments.length - 1]!.messageIndex : undefined;
      const verdict = conversation.length ? await engines.judge({ conversation, direction: options.direction ?? "input", categories: asked }) : { safe: true, categories: [] };
      if (!verdict.safe) {
        const named = verdict.categories.filter((c) => asked.includes(c));
        for (const c of named) {
          raise(c, 1);
          onCategory("judge", c, { score: 1, messageIndex: lastIndex });
        }
        if (!named.length) {
          // "unsafe" without a category we know: the policy's default action decides
          const act = policy.defaultAction;
          if (act !== "off") {
            decisions.push({ check: "judge", category: "unspecified", action: act, messageIndex: lastIndex });
            if (act === "block") blocked = true;
          }
        }
      }
    } catch (e) {
      onError("judge", e);
    }
    timings.judge = now() - t0;
  }

  // 4. external /v1/moderations
  const external =
    engines.external ??
    (policy.external && (engines.fetch || typeof globalThis.fetch === "function")
      ? createExternalModerator({ url: policy.external.url, model: policy.external.model, timeoutMs: policy.external.timeoutMs, apiKey: engines.externalApiKey, fetch: engines.fetch })
      : undefined);
  if (!done() && policy.checks.external && external) {
    const t0 = now();
    checks.push("external");
    try {
      const live = segments.filter((s) => s.redacted.trim());
      const results = live.length ? await external(live.map((s) => s.redacted)) : [];
      results.forEach((r, k) => {
        for (const c of CATEGORIES) {
          raise(c, r.scores[c]);
          const threshold = policy.categories[c]?.threshold;
          const hit = threshold !== undefined ? r.scores[c] >= threshold : r.categories[c] === true;
          if (hit) onCategory("external", c, { score: r.scores[c], ...(threshold !== undefined ? { threshold } : {}), messageIndex: live[k]!.messageIndex, ...(keepText ? { text: clip(live[k]!.redacted) } : {}) });
        }
      });
    } catch (e) {
      onError("external", e);
    }
    timings.external = now() - t0;
  }

  const action = decisions.some((d) => d.action === "block") ? "block" : "allow";
  return {
    action,
    flagged: action === "block" || CATEGORIES.some((c) => categories[c]),
    categories,
    scores,
    redactedMessages: rebuild(messages, segments),
    decisions,
    checks,
    timings,
  };
}

/** Moderate one text (non-stream output, or one /v1/moderations input). */
export function moderateText(policy: ModerationPolicy, text: string, engines: ModerationEngines = {}, options: ModerateOptions = {}): Promise<ModerationResult> {
  const role = options.direction === "output" ? "assistant" : "user";
  return moderateInput(policy, [{ role, content: text }], engines, { ...options, roles: [role] });
}
