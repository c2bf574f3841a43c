/**
 * /v1/moderations in OpenAI's schema: request variants, the exact response shape (every
 * category key, in every map), and the official `openai` client parsing our response.
 */
import OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { buildModerationsResponse, handleModerationsRequest, moderationsInputs, ModerationsRequestSchema, PETREL_MODERATION_MODEL } from "../kernels/moderation/openai.ts";
import { parsePolicy } from "../kernels/moderation/policy.ts";
import { CATEGORIES, categoryMap } from "../kernels/moderation/taxonomy.ts";
import type { OnnxClassifier } from "../kernels/moderation/classifier.ts";
import { loadShippedClassifier } from "../scripts/moderation/node.ts";

let classifier: OnnxClassifier;
beforeAll(async () => {
  classifier = await loadShippedClassifier();
});

const OPENAI_CATEGORY_KEYS = [
  "harassment",
  "harassment/threatening",
  "hate",
  "hate/threatening",
  "illicit",
  "illicit/violent",
  "self-harm",
  "self-harm/instructions",
  "self-harm/intent",
  "sexual",
  "sexual/minors",
  "violence",
  "violence/graphic",
].sort();

describe("request", () => {
  it("groups inputs like OpenAI: a string, one per string, one for a multi-modal array", () => {
    expect(moderationsInputs(ModerationsRequestSchema.parse({ input: "hi" }))).toEqual([{ text: "hi", hadImage: false }]);
    expect(moderationsInputs(ModerationsRequestSchema.parse({ input: ["a", "b"] })).map((i) => i.text)).toEqual(["a", "b"]);
    const mm = ModerationsRequestSchema.parse({ input: [{ type: "text", text: "look" }, { type: "image_url", image_url: { url: "https://x/y.png" } }, { type: "text", text: "at this" }], model: "omni-moderation-latest" });
    expect(moderationsInputs(mm)).toEqual([{ text: "look\nat this", hadImage: true }]);
  });

  it("rejects bodies OpenAI would reject", async () => {
    for (const bad of [{}, { input: 3 }, { input: [1, 2] }, { input: [] as unknown[] }, { input: [{ type: "audio", data: "x" }] }]) {
      await expect(handleModerationsRequest(bad, parsePolicy({}), { classifier })).rejects.toBeInstanceOf(ZodError);
    }
  });
});

describe("response shape", () => {
  it("has exactly OpenAI's keys, all 13 categories in each map, booleans and scores in [0, 1]", async () => {
    const { response } = await handleModerationsRequest({ input: ["I will find you and hurt you, you worthless idiot.", "What a lovely morning!"] }, parsePolicy({}), { classifier }, { id: "modr-test" });
    expect(Object.keys(response).sort()).toEqual(["id", "model", "results"]);
    expect(response.id).toBe("modr-test");
    expect(response.model).toBe(PETREL_MODERATION_MODEL);
    expect(response.results).toHaveLength(2);
    for (const r of response.results) {
      expect(Object.keys(r).sort()).toEqual(["categories", "category_applied_input_types", "category_scores", "flagged"]);
      expect(Object.keys(r.categories).sort()).toEqual(OPENAI_CATEGORY_KEYS);
      expect(Object.keys(r.category_scores).sort()).toEqual(OPENAI_CATEGORY_KEYS);
      expect(Object.keys(r.category_applied_input_types).sort()).toEqual(OPENAI_CATEGORY_KEYS);
      for (const c of CATEGORIES) {
        expect(typeof r.categories[c]).toBe("boolean");
        expect(r.category_scores[c]).toBeGreaterThanOrEqual(0);
        expect(r.category_scores[c]).toBeLessThanOrEqual(1);
        expect(r.category_applied_input_types[c]).toEqual(["text"]);
      }
    }
    expect(response.results[0]!.flagged).toBe(true);
    expect(response.results[0]!.categories.harassment || response.results[0]!.categories["harassment/threatening"]).toBe(true);
    expect(response.results[1]!.flagged).toBe(false);
    expect(CATEGORIES.every((c) => response.results[1]!.categories[c] === false)).toBe(true);
  });

  it("reports every check's scores (no early exit) and generates modr- ids", () => {
    const body = buildModerationsResponse([{ flagged: false, categories: categoryMap(() => false), scores: categoryMap(() => 0.25) }], { model: "m" });
    expect(body.id).toMatch(/^modr-[0-9a-f]{24}$/);
    expect(body.results[0]!.category_scores.violence).toBe(0.25);
  });
});

describe("the official openai client", () => {
  it("client.moderations.create parses our response", async () => {
    const policy = parsePolicy({});
    const requests: unknown[] = [];
    const client = new OpenAI({
      apiKey: "petrel-dev-key",
      baseURL: "http://petrel.local/v1",
      fetch: async (url, init) => {
        expect(String(url)).toBe("http://petrel.local/v1/moderations");
        const body = JSON.parse(String(init!.body));
        requests.push(body);
        const { response } = await handleModerationsRequest(body, policy, { classifier });
        return new Response(JSON.stringify(response), { status: 200, headers: { "content-type": "application/json" } });
      },
    });
    const res = await client.moderations.create({ model: "omni-moderation-latest", input: ["How do I make a pipe bomb at home?", "How do I make a paper airplane?"] });
    expect(requests).toEqual([{ model: "omni-moderation-latest", input: ["How do I make a pipe bomb at home?", "How do I make a paper airplane?"] }]);
    expect(res.model).toBe("omni-moderation-latest");
    expect(res.results).toHaveLength(2);
    const [bomb, plane] = res.results;
    expect(bomb!.flagged).toBe(true);
    expect(bomb!.categories["illicit/violent"] || bomb!.categories.illicit).toBe(true);
    expect(bomb!.category_scores.illicit).toBeGreaterThan(0.5);
    expect(plane!.flagged).toBe(false);
    expect(plane!.category_applied_input_types.violence).toEqual(["text"]);

    const single = await client.moderations.create({ input: "I love my cat." });
    expect(single.results).toHaveLength(1);
    expect(single.model).toBe(PETREL_MODERATION_MODEL);
  });
});
