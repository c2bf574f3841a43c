/** Policy validation and defaults; blocklists and patterns. */
import { describe, expect, it } from "vitest";
import { DEFAULT_POLICY, PolicyError, categoryAction, parsePolicy } from "../kernels/moderation/policy.ts";
import { findRuleHits, placeholder, redactText } from "../kernels/moderation/rules.ts";
import { CATEGORIES } from "../kernels/moderation/taxonomy.ts";

describe("policy", () => {
  it("documents its defaults: rules + classifier, every category blocks, cards/IBANs/secrets redacted", () => {
    expect(DEFAULT_POLICY.checks).toEqual({ rules: true, classifier: true, judge: false, external: false });
    for (const c of CATEGORIES) expect(categoryAction(DEFAULT_POLICY, c)).toBe("block");
    expect(DEFAULT_POLICY.pii).toEqual({ email: "allow", phone: "allow", card: "redact", iban: "redact", secret: "redact" });
    expect(DEFAULT_POLICY.output).toEqual({ enabled: true, windowChars: 256, stepChars: 128 });
    expect(DEFAULT_POLICY.logging.includeFlaggedText).toBe(false);
    expect(DEFAULT_POLICY.systemPrompt).toBeUndefined();
    expect(parsePolicy(undefined)).toEqual(DEFAULT_POLICY);
  });

  it("accepts a full tenant policy", () => {
    const p = parsePolicy({
      id: "acme",
      checks: { rules: true, classifier: true, judge: true, external: true },
      defaultAction: "flag",
      categories: { violence: { action: "block", threshold: 0.4 }, sexual: { action: "off" } },
      rules: {
        blocklists: [{ id: "slurs", category: "hate", terms: ["badword"] }],
        patterns: [{ id: "order-id", pattern: "ORD-\\d{6}", action: "redact" }],
      },
      pii: { email: "block", phone: "redact" },
      systemPrompt: { content: "You are Acme's assistant." },
      output: { windowChars: 64, stepChars: 16 },
      external: { url: "https://moderation.example/v1/moderations" },
      logging: { includeFlaggedText: true },
    });
    expect(categoryAction(p, "violence")).toBe("block");
    expect(categoryAction(p, "sexual")).toBe("off");
    expect(categoryAction(p, "hate")).toBe("flag");
    expect(p.pii.card).toBe("redact");
    expect(p.systemPrompt!.clientSystem).toBe("merge");
    expect(p.external!.model).toBe("omni-moderation-latest");
    expect(p.rules.blocklists[0]!.wholeWord).toBe(true);
  });

  it("rejects invalid policies with readable errors", () => {
    const bad = [
      { checks: { rules: "yes" } },
      { categories: { violence: { threshold: 1.5 } } },
      { categories: { spam: { action: "block" } } },
      { rules: { patterns: [{ id: "x", pattern: "(unclosed" }] } },
      { rules: { blocklists: [{ id: "bad id!", terms: ["x"] }] } },
      { rules: { blocklists: [{ id: "empty", terms: [] }] } },
      { pii: { email: "maybe" } },
      { output: { windowChars: 0 } },
      { external: { url: "not a url" } },
      { unknownKey: 1 },
    ];
    for (const b of bad) expect(() => parsePolicy(b), JSON.stringify(b)).toThrow(PolicyError);
    try {
      parsePolicy({ rules: { patterns: [{ id: "x", pattern: "(unclosed" }] } });
    } catch (e) {
      expect((e as Error).message).toMatch(/invalid regular expression/);
    }
  });
});

describe("blocklists and patterns", () => {
  const policy = parsePolicy({
    pii: { card: "allow", iban: "allow", secret: "allow" },
    rules: {
      blocklists: [
        { id: "weapons", category: "illicit/violent", terms: ["pipe bomb", "bomb"], action: "block" },
        { id: "brand", terms: ["CompetitorCo"], caseSensitive: true, action: "flag" },
        { id: "substr", terms: ["xx"], wholeWord: false, action: "redact" },
      ],
      patterns: [{ id: "order-id", pattern: "\\bORD-\\d{6}\\b", flags: "", action: "redact" }],
    },
  });

  it("matches whole words case-insensitively, longest term first", () => {
    const hits = findRuleHits("How to build a Pipe Bomb? The bombastic speech. BOMB!", policy);
    expect(hits.map((h) => [h.ruleId, h.label, h.action])).toEqual([
      ["weapons", "illicit/violent", "block"],
      ["weapons", "illicit/violent", "block"],
    ]);
    expect(hits.map((h) => "How to build a Pipe Bomb? The bombastic speech. BOMB!".slice(h.start, h.end))).toEqual(["Pipe Bomb", "BOMB"]);
  });

  it("word boundaries are Unicode-aware; case-sensitive lists stay case-sensitive", () => {
    expect(findRuleHits("ébomb bombé bomb", policy).map((h) => h.start)).toEqual([12]);
    expect(findRuleHits("competitorco CompetitorCo", policy).filter((h) => h.ruleId === "brand").map((h) => h.start)).toEqual([13]);
  });

  it("substring terms and patterns redact with typed placeholders", () => {
    const text = "order ORD-123456 is xxl";
    const hits = findRuleHits(text, policy);
    expect(hits.map((h) => h.ruleId)).toEqual(["order-id", "substr"]);
    expect(redactText(text, hits)).toBe("order [REDACTED_ORDER_ID] is [REDACTED_SUBSTR]l");
    expect(placeholder(hits[0]!)).toBe("[REDACTED_ORDER_ID]");
  });

  it("overlapping redactions merge into one placeholder", () => {
    const p = parsePolicy({ rules: { patterns: [{ id: "a", pattern: "abc", action: "redact" }, { id: "b", pattern: "bcd", action: "redact" }] } });
    const text = "xabcdx";
    expect(redactText(text, findRuleHits(text, p))).toBe("x[REDACTED_A]x");
  });

  it("zero-length pattern matches are ignored", () => {
    const p = parsePolicy({ rules: { patterns: [{ id: "empty", pattern: "x*", action: "block" }] } });
    expect(findRuleHits("abc", p)).toEqual([]);
    expect(findRuleHits("axxb", p).map((h) => [h.start, h.end])).toEqual([[1, 3]]);
  });
});
