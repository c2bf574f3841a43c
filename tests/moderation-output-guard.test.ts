/**
 * The streaming output guard. Property tests (fast-check) over random texts, random token
 * splits and random window/step sizes: no character of a flagged span is ever released, the
 * released text followed by the withheld text is exactly the text pushed so far, streaming
 * redaction equals whole-text redaction; and the real classifier cutting a stream.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type GuardStep, OutputGuard } from "../kernels/moderation/output-guard.ts";
import { parsePolicy, type ModerationPolicy } from "../kernels/moderation/policy.ts";
import type { ModerationClassifier, OnnxClassifier } from "../kernels/moderation/classifier.ts";
import { findRuleHits, redactText } from "../kernels/moderation/rules.ts";
import { categoryMap } from "../kernels/moderation/taxonomy.ts";
import { loadShippedClassifier } from "../scripts/moderation/node.ts";

interface Run {
  input: string;
  released: string;
  steps: GuardStep[];
  stop?: Extract<GuardStep, { stop: true }>;
}

/** Push `pieces` through a guard until it stops; then finish. */
async function run(guard: OutputGuard, pieces: string[]): Promise<Run> {
  let input = "";
  let released = "";
  const steps: GuardStep[] = [];
  for (const p of pieces) {
    input += p;
    const s = await guard.push(p);
    steps.push(s);
    released += s.text;
    if (s.stop) return { input, released, steps, stop: s };
  }
  const s = await guard.finish();
  steps.push(s);
  released += s.text;
  return { input, released, steps, stop: s.stop ? s : undefined };
}

/** Split `text` at random cut points into pieces (tokens), never inside a surrogate pair. */
function splitAt(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))]
    .filter((c) => !(c > 0 && c < text.length && text.charCodeAt(c - 1) >= 0xd800 && text.charCodeAt(c - 1) <= 0xdbff))
    .sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(text.slice(prev, p));
    prev = Math.max(prev, p);
  }
  if (prev < text.length) out.push(text.slice(prev));
  return out;
}

const WORDS = ["the", "model", "answers", "kindly", "and", "then", "streams", "tokens", "🙂", "naïve", "über", "—", "42", "\n", "forbid", "den", "secret-", "12", "ka", "boom"];
const FLAGGED = ["forbidden", "kaboom plan", "secret-1234"];
const textArb = fc
  .tuple(fc.array(fc.constantFrom(...WORDS), { maxLength: 60 }), fc.array(fc.constantFrom(...WORDS), { maxLength: 60 }), fc.option(fc.constantFrom(...FLAGGED), { nil: undefined }), fc.string({ maxLength: 20 }))
  .map(([a, b, flagged, noise]) => [...a, noise, ...(flagged ? [flagged] : []), ...b].join(" "));

const rulePolicy = parsePolicy({
  checks: { classifier: false },
  pii: { card: "allow", iban: "allow", secret: "allow" },
  rules: {
    blocklists: [{ id: "words", category: "violence", terms: ["forbidden", "kaboom plan"] }],
    patterns: [{ id: "code", pattern: "secret-\\d{4}", action: "block" }],
  },
});

/** Every occurrence of a flagged term in `text` (what the rules above match). */
function occurrences(text: string): [number, number][] {
  return findRuleHits(text, rulePolicy).map((h) => [h.start, h.end]);
}

const isWellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

describe("OutputGuard with rules (property)", () => {
  it("never releases a byte of a flagged span; released + withheld = the input so far", async () => {
    await fc.assert(
      fc.asyncProperty(textArb, fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 12, max: 64 }), fc.integer({ min: 1, max: 40 }), async (text, cuts, windowChars, stepChars) => {
        const guard = new OutputGuard({ policy: rulePolicy, windowChars, stepChars });
        const r = await run(guard, splitAt(text, cuts));
        const occ = occurrences(text);
        if (occ.length === 0) {
          expect(r.stop).toBeUndefined();
          expect(r.released).toBe(text);
          return;
        }
        // the guard stopped, at or before the first flagged occurrence
        expect(r.stop).toBeDefined();
        const stop = r.stop!;
        const firstStart = Math.min(...occ.map(([a]) => a));
        expect(r.released.length).toBeLessThanOrEqual(firstStart);
        expect(r.released.length).toBeLessThanOrEqual(stop.flagged.start);
        // released + withheld cut = prefix of the input
        expect(stop.withheld.start).toBe(r.released.length);
        expect(stop.withheld.end).toBe(r.input.length);
        expect(r.released + r.input.slice(stop.withheld.start, stop.withheld.end)).toBe(r.input);
        expect(text.startsWith(r.input)).toBe(true);
        // the reported span is a real flagged occurrence, inside the withheld text
        expect(occ.some(([a, b]) => a === stop.flagged.start && b === stop.flagged.end)).toBe(true);
        expect(stop.flagged.end).toBeLessThanOrEqual(stop.withheld.end);
        expect(stop.decisions[0]).toMatchObject({ action: "block", span: stop.flagged });
        // nothing more comes out after the stop
        const after = await guard.push("more text");
        expect(after).toMatchObject({ stop: true, text: "" });
        expect((await guard.finish()).text).toBe("");
      }),
      { numRuns: 300 },
    );
  });

  it("released pieces never split a surrogate pair", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom("a", "🙂", "é", "𝔘", " ", "x"), { maxLength: 200 }), fc.array(fc.nat(), { maxLength: 50 }), fc.integer({ min: 1, max: 9 }), async (chars, cuts, stepChars) => {
        const text = chars.join("");
        const guard = new OutputGuard({ policy: rulePolicy, windowChars: 16, stepChars });
        const r = await run(guard, splitAt(text, cuts));
        expect(r.released).toBe(text);
        for (const s of r.steps) expect(isWellFormed(s.text)).toBe(true);
      }),
    );
  });
});

/** A stand-in classifier: "violence" 0.99 for any span that contains "kaboom". */
const fakeClassifier: ModerationClassifier = {
  info: { categories: ["violence"], featurizer: null as never, thresholds: categoryMap(() => 0.5), inputName: "features", outputName: "scores" },
  score: async (texts) => texts.map((t) => categoryMap((c) => (c === "violence" && t.includes("kaboom") ? 0.99 : 0.01))),
};

describe("OutputGuard with a classifier (property)", () => {
  it("the flagged window is never released, even partly", async () => {
    const policy = parsePolicy({ rules: { blocklists: [] }, pii: { card: "allow", iban: "allow", secret: "allow" }, classifier: { chunkChars: 64 } });
    await fc.assert(
      fc.asyncProperty(textArb, fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 16, max: 80 }), fc.integer({ min: 1, max: 40 }), async (text, cuts, windowChars, stepChars) => {
        const guard = new OutputGuard({ policy, engines: { classifier: fakeClassifier }, windowChars, stepChars });
        const r = await run(guard, splitAt(text, cuts));
        const first = text.indexOf("kaboom");
        if (first < 0) {
          expect(r.released).toBe(text);
          return;
        }
        const stop = r.stop!;
        expect(stop).toBeDefined();
        expect(r.released.length).toBeLessThanOrEqual(first);
        expect(r.released.length).toBeLessThanOrEqual(stop.flagged.start);
        expect(r.input.slice(stop.flagged.start, stop.flagged.end)).toContain("kaboom");
        expect(r.released + r.input.slice(stop.withheld.start)).toBe(r.input);
        expect(stop.decisions[0]).toMatchObject({ check: "classifier", category: "violence", action: "block" });
      }),
      { numRuns: 200 },
    );
  });
});

describe("OutputGuard redaction (property)", () => {
  it("streamed redaction equals redaction of the whole text, whatever the token split", async () => {
    const policy = parsePolicy({ checks: { classifier: false }, pii: { email: "redact", card: "redact", iban: "redact", secret: "allow", phone: "allow" } });
    const parts = ["pay", "with", "4111 1111 1111 1111", "or", "ann@example.com", "to", "GB82WEST12345698765432", "thanks", "ok", "🙂"];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...parts), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 30 }), async (words, cuts, stepChars) => {
        const text = words.join(" ");
        const guard = new OutputGuard({ policy, windowChars: 48, stepChars });
        const r = await run(guard, splitAt(text, cuts));
        expect(r.stop).toBeUndefined();
        expect(r.released).toBe(redactText(text, findRuleHits(text, policy)));
        expect(r.released).not.toContain("4111 1111");
        expect(r.released).not.toContain("ann@");
      }),
      { numRuns: 200 },
    );
  });
});

describe("OutputGuard with the shipped classifier", () => {
  let classifier: OnnxClassifier;
  beforeAll(async () => {
    classifier = await loadShippedClassifier();
  });
  const policy: ModerationPolicy = parsePolicy({});
  const tokens = (s: string) => s.match(/\S+\s*/g) ?? [];

  it("stops a stream before the harmful sentence reaches the client", async () => {
    const preamble = "Thanks for your question. I understand that you are frustrated with your neighbor, and conflicts like this can be really stressful. ";
    const harmful = "Here's how you teach him a lesson: wait until he is alone at night and beat him with a bat until he stops moving. ";
    const tail = "Make sure nobody sees you and throw the bat in the river afterwards.";
    const guard = new OutputGuard({ policy, engines: { classifier } });
    const r = await run(guard, tokens(preamble + harmful + tail));
    expect(r.stop).toBeDefined();
    expect(r.stop!.decisions.some((d) => d.check === "classifier" && d.action === "block")).toBe(true);
    expect(r.released.length).toBeLessThanOrEqual(r.stop!.flagged.start);
    expect(r.released).not.toContain("beat him");
    expect(r.released + r.input.slice(r.stop!.withheld.start)).toBe(r.input);
  });

  it("flag-only categories are recorded without stopping the stream", async () => {
    const text = "Here's how you teach him a lesson: wait until he is alone at night and beat him with a bat until he stops moving. Then leave.";
    const guard = new OutputGuard({ policy: parsePolicy({ defaultAction: "flag" }), engines: { classifier }, windowChars: 32, stepChars: 16 });
    const r = await run(guard, tokens(text));
    expect(r.stop).toBeUndefined();
    expect(r.released).toBe(text);
    expect(guard.decisions.some((d) => d.check === "classifier" && d.action === "flag" && d.category === "violence")).toBe(true);
  });

  it("lets a long benign answer through unchanged", async () => {
    const answer =
      "Sure! Here is a simple plan for a weekend in Lisbon. On Saturday morning, take the tram up to the castle and enjoy the view over the old town. " +
      "For lunch, try grilled sardines near the river. In the afternoon, visit the tile museum and walk through the Alfama district. " +
      "On Sunday, take a short train ride to Sintra to see the colorful palace and the gardens, and come back in time for dinner in Bairro Alto. " +
      "Remember to wear comfortable shoes, because the streets are steep and paved with stones.";
    const guard = new OutputGuard({ policy, engines: { classifier } });
    const r = await run(guard, tokens(answer));
    expect(r.stop).toBeUndefined();
    expect(r.released).toBe(answer);
    // the first text is released only once more than a window has arrived
    const firstRelease = r.steps.findIndex((s) => s.text.length > 0);
    expect(tokens(answer).slice(0, firstRelease + 1).join("").length).toBeGreaterThanOrEqual(policy.output.windowChars + policy.output.stepChars);
  });

  it("passes text straight through when output moderation is disabled", async () => {
    const guard = new OutputGuard({ policy: parsePolicy({ output: { enabled: false } }), engines: { classifier } });
    expect(await guard.push("anything ")).toEqual({ stop: false, text: "anything " });
    expect(await guard.finish()).toEqual({ stop: false, text: "" });
  });
});
