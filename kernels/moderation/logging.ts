/**
 * Moderation decision log records: one per decision, with the check, category and action,
 * and never the flagged text unless the policy allows it (then the decision carries it).
 */
import type { ModerationDecision } from "./pipeline.ts";
import type { ModerationPolicy } from "./policy.ts";

export interface ModerationLogRecord {
  ts: string;
  tenant?: string;
  requestId?: string;
  policy: string;
  direction: "input" | "output" | "moderations";
  check: ModerationDecision["check"];
  category: string;
  action: ModerationDecision["action"];
  ruleId?: string;
  score?: number;
  threshold?: number;
  messageIndex?: number;
  span?: { start: number; end: number };
  /** present only when policy.logging.includeFlaggedText is true */
  text?: string;
  error?: string;
}

export function decisionLogRecords(
  policy: ModerationPolicy,
  decisions: readonly ModerationDecision[],
  ctx: { direction: ModerationLogRecord["direction"]; tenant?: string; requestId?: string; now?: Date },
): ModerationLogRecord[] {
  const ts = (ctx.now ?? new Date()).toISOString();
  return decisions.map((d) => {
    const r: ModerationLogRecord = { ts, policy: policy.id, direction: ctx.direction, check: d.check, category: d.category, action: d.action };
    if (ctx.tenant !== undefined) r.tenant = ctx.tenant;
    if (ctx.requestId !== undefined) r.requestId = ctx.requestId;
    if (d.ruleId !== undefined) r.ruleId = d.ruleId;
    if (d.score !== undefined) r.score = d.score;
    if (d.threshold !== undefined) r.threshold = d.threshold;
    if (d.messageIndex !== undefined) r.messageIndex = d.messageIndex;
    if (d.span) r.span = { ...d.span };
    if (d.error !== undefined) r.error = d.error;
    if (policy.logging.includeFlaggedText && d.text !== undefined) r.text = d.text;
    return r;
  });
}
