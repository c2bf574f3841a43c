/**
 * The rules check: the policy's blocklists and regex patterns, and the PII detectors whose
 * action is not "allow". Cheap and synchronous; returns every hit with its span and action.
 */
import type { Category } from "./taxonomy.ts";
import type { ModerationPolicy } from "./policy.ts";
import { type PiiKind, PII_KINDS, detectPii } from "./pii.ts";

export type RuleAction = "block" | "flag" | "redact";

export interface RuleHit {
  check: "rules" | "pii";
  /** blocklist/pattern id, or the PII kind */
  ruleId: string;
  /** OpenAI category the rule counts as; PII and custom rules have none */
  category?: Category;
  /** "pii/card", "custom", or the category */
  label: string;
  action: RuleAction;
  start: number;
  end: number;
  detail?: string;
}

interface CompiledRule {
  id: string;
  category?: Category;
  action: RuleAction;
  re: RegExp;
}

interface CompiledRules {
  rules: CompiledRule[];
  pii: { kind: PiiKind; action: "block" | "redact" }[];
}

const cache = new WeakMap<ModerationPolicy, CompiledRules>();

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function compileRules(policy: ModerationPolicy): CompiledRules {
  const hit = cache.get(policy);
  if (hit) return hit;
  const rules: CompiledRule[] = [];
  for (const b of policy.rules.blocklists) {
    // longest first, so that "kill you" wins over "kill" at the same position
    const alternatives = [...new Set(b.terms)].sort((x, y) => y.length - x.length).map(escapeRegExp).join("|");
    const source = b.wholeWord ? `(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])` : `(?:${alternatives})`;
    rules.push({ id: b.id, category: b.category, action: b.action, re: new RegExp(source, b.caseSensitive ? "gu" : "giu") });
  }
  for (const p of policy.rules.patterns) {
    rules.push({ id: p.id, category: p.category, action: p.action, re: new RegExp(p.pattern, `${p.flags}g`) });
  }
  const pii = PII_KINDS.filter((k) => policy.pii[k] !== "allow").map((kind) => ({ kind, action: policy.pii[kind] as "block" | "redact" }));
  const compiled = { rules, pii };
  cache.set(policy, compiled);
  return compiled;
}

/** All rule and PII hits in `text`, in text order. */
export function findRuleHits(text: string, policy: ModerationPolicy): RuleHit[] {
  const { rules, pii } = compileRules(policy);
  const hits: RuleHit[] = [];
  for (const r of rules) {
    r.re.lastIndex = 0;
    for (const m of text.matchAll(r.re)) {
      if (m[0].length === 0) continue;
      hits.push({ check: "rules", ruleId: r.id, category: r.category, label: r.category ?? "custom", action: r.action, start: m.index!, end: m.index! + m[0].length });
    }
  }
  if (pii.length) {
    const actions = new Map(pii.map((p) => [p.kind, p.action]));
    for (const m of detectPii(text, [...actions.keys()])) {
      hits.push({ check: "pii", ruleId: m.kind, label: `pii/${m.kind}`, action: actions.get(m.kind)!, start: m.start, end: m.end, detail: m.detail });
    }
  }
  return hits.sort((a, b) => a.start - b.start || b.end - a.end);
}

/** The placeholder a redacted span becomes: "[REDACTED_EMAIL]", "[REDACTED_CARD]", "[REDACTED_<RULE ID>]". */
export function placeholder(hit: RuleHit): string {
  return `[REDACTED_${hit.ruleId.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}]`;
}

/**
 * Replace the spans of the redact hits with their placeholders. Overlapping redactions merge
 * (the earliest hit's placeholder names the merged span).
 */
export function redactText(text: string, hits: readonly RuleHit[]): string {
  const spans = hits.filter((h) => h.action === "redact").sort((a, b) => a.start - b.start || b.end - a.end);
  let out = "";
  let pos = 0;
  for (const h of spans) {
    if (h.end <= pos) continue;
    if (h.start < pos) {
      pos = h.end; // overlaps the previous redaction: extend it
      continue;
    }
    out += text.slice(pos, h.start) + placeholder(h);
    pos = h.end;
  }
  return out + text.slice(pos);
}
