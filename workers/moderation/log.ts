/**
 * Moderation log lines: one summary per moderation run (which checks ran, the outcome, the time)
 * and one line per decision (check, category, action) — never the flagged text unless the
 * policy's `logging.includeFlaggedText` allows it (decisionLogRecords enforces that).
 */
import { decisionLogRecords, type ModerationDecision, type ModerationLogRecord, type ModerationPolicy } from "../../kernels/moderation/index.ts";

export interface ModerationLogContext {
  direction: ModerationLogRecord["direction"];
  tenant: string;
  requestId: string;
}

export function logModeration(
  policy: ModerationPolicy,
  decisions: readonly ModerationDecision[],
  ctx: ModerationLogContext,
  summary: { action: string; checks: readonly string[]; ms?: number },
): void {
  console.log(JSON.stringify({ level: "info", component: "moderation", msg: "moderation", request_id: ctx.requestId, tenant: ctx.tenant, policy: policy.id, direction: ctx.direction, ...summary, decisions: decisions.length }));
  for (const record of decisionLogRecords(policy, decisions, ctx)) {
    console.log(JSON.stringify({ level: "info", component: "moderation", msg: "moderation decision", request_id: ctx.requestId, ...record }));
  }
}
