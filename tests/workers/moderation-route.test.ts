/**
 * POST /v1/moderations inside workerd, driven by the official `openai` client (its fetch is the
 * worker's), and the admin routes that set a tenant's policy at run time.
 */
import { SELF } from "cloudflare:test";
import OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { CATEGORIES } from "../../kernels/moderation/index.ts";
import { api, KEY_A, KEY_ADMIN, type ErrorBody } from "./helpers.ts";
import { tenantWithPolicy, uploadClassifier } from "./moderation-helpers.ts";

const THREAT = "Meet me after school, I'm going to smash your face in.";
const BENIGN = "How do I kill the process that holds port 8080?";

const clientFor = (apiKey: string) => new OpenAI({ baseURL: "https://petrel.test/v1", apiKey, maxRetries: 0, fetch: (input, init) => SELF.fetch(input as RequestInfo, init as RequestInit) });

beforeAll(uploadClassifier);

describe("POST /v1/moderations with the openai client", () => {
  it("one string: OpenAI's response shape, every category key, the classifier's scores", async () => {
    const client = clientFor(await tenantWithPolicy({}));
    const res = await client.moderations.create({ input: THREAT });
    expect(res.id).toMatch(/^modr-[0-9a-f]{24}$/);
    expect(res.model).toBe("petrel-moderation-1");
    expect(res.results).toHaveLength(1);
    const [r] = res.results;
    expect(Object.keys(r!.categories).sort()).toEqual([...CATEGORIES].sort());
    expect(Object.keys(r!.category_scores).sort()).toEqual([...CATEGORIES].sort());
    expect(r!.flagged).toBe(true);
    expect(r!.categories.violence).toBe(true);
    expect(r!.category_scores.violence).toBeGreaterThan(0.5);
    expect(r!.category_applied_input_types.violence).toEqual(["text"]);
    for (const c of CATEGORIES) expect(r!.category_scores[c]).toBeGreaterThanOrEqual(0);
  });

  it("an array of strings: one result per string, in order; the model name is echoed", async () => {
    const client = clientFor(await tenantWithPolicy({}));
    const res = await client.moderations.create({ input: [BENIGN, THREAT, "Puffins nest on cliffs."], model: "omni-moderation-latest" });
    expect(res.model).toBe("omni-moderation-latest");
    expect(res.results.map((r) => r.flagged)).toEqual([false, true, false]);
  });

  it("multimodal parts are one input (text parts joined; images are not moderated)", async () => {
    const client = clientFor(await tenantWithPolicy({}));
    const res = await client.moderations.create({ input: [{ type: "text", text: "Meet me after school," }, { type: "image_url", image_url: { url: "https://example.com/x.png" } }, { type: "text", text: "I'm going to smash your face in." }] });
    expect(res.results).toHaveLength(1);
    expect(res.results[0]!.flagged).toBe(true);
  });

  it("the tenant's policy decides: rules only, a blocklist category", async () => {
    const client = clientFor(await tenantWithPolicy({ checks: { rules: true, classifier: false }, rules: { blocklists: [{ id: "b", category: "hate", terms: ["frobnicate"] }] } }));
    const res = await client.moderations.create({ input: [THREAT, "frobnicate them all"] });
    expect(res.results[0]!.flagged).toBe(false);
    expect(res.results[1]!).toMatchObject({ flagged: true, categories: { hate: true } });
    expect(res.results[1]!.category_scores.hate).toBe(1);
  });

  it("a bad body is a 400 naming the field (the client's BadRequestError)", async () => {
    const client = clientFor(KEY_A);
    const err = await client.moderations.create({ input: 42 as unknown as string }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("input");
    const bad = await api("/v1/moderations", { body: "{not json", headers: { "content-type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error.code).toBe("invalid_json");
    expect((await api("/v1/moderations", { key: null, json: { input: "x" } })).status).toBe(401);
  });
});

describe("admin: tenant policies", () => {
  it("PUT validates and stores, GET shows the effective policy, DELETE falls back to the configuration", async () => {
    const bad = await api("/v1/admin/moderation/policies/acme", { method: "PUT", key: KEY_ADMIN, json: { checks: { classifier: "yes" } } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error).toMatchObject({ code: "invalid_policy", param: "checks.classifier" });
    const leak = await api("/v1/admin/moderation/policies/acme", { method: "PUT", key: KEY_ADMIN, json: { checks: { external: true }, external: { url: "https://x.example/v1/moderations", apiKeySecret: "API_KEYS" } } });
    expect(leak.status).toBe(400);

    const put = await api("/v1/admin/moderation/policies/acme", { method: "PUT", key: KEY_ADMIN, json: { id: "acme", defaultAction: "flag" } });
    expect(put.status).toBe(200);
    const got = (await (await api("/v1/admin/moderation/policies/acme", { key: KEY_ADMIN })).json()) as { source: string; policy: { id: string; defaultAction: string } };
    expect(got).toMatchObject({ source: "kv", policy: { id: "acme", defaultAction: "flag" } });
    expect((await api("/v1/admin/moderation/policies/acme", { method: "DELETE", key: KEY_ADMIN })).status).toBe(200);
    // MODERATION_POLICIES of the test configuration: "*" checks nothing
    const after = (await (await api("/v1/admin/moderation/policies/acme", { key: KEY_ADMIN })).json()) as { source: string; policy: { checks: { rules: boolean } } };
    expect(after).toMatchObject({ source: "config", policy: { checks: { rules: false } } });
    expect((await api("/v1/admin/moderation/policies/acme", { key: KEY_A })).status).toBe(403);
  });
});
