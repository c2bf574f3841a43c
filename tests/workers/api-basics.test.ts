/**
 * The worker's edges inside workerd: health, request ids, CORS, auth (configured and run-time
 * keys, revocation), models, OpenAI error objects for every bad request, 404s, 413.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, KEY_ADMIN, KEY_REVOKE, uploadModel, type ErrorBody } from "./helpers.ts";

beforeAll(async () => {
  await uploadModel("basics-q8", "fixtures/reference/llama-Q8_0.gguf");
});

async function expectError(res: Response, status: number, error: Partial<ErrorBody["error"]>): Promise<ErrorBody> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = (await res.json()) as ErrorBody;
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error).toMatchObject(error);
  expect(res.headers.get("x-request-id")).toBeTruthy();
  return body;
}

describe("health and request ids", () => {
  it("answers /health without a key and generates a request id", async () => {
    const res = await api("/health", { key: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it("echoes a client's x-request-id, on errors too, and replaces a malformed one", async () => {
    expect((await api("/health", { headers: { "x-request-id": "client-42.a:b" } })).headers.get("x-request-id")).toBe("client-42.a:b");
    expect((await api("/v1/models", { key: null, headers: { "x-request-id": "err-7" } })).headers.get("x-request-id")).toBe("err-7");
    expect((await api("/health", { headers: { "x-request-id": "bad id with spaces" } })).headers.get("x-request-id")).toMatch(/^req_/);
  });
});

describe("CORS", () => {
  it("answers a preflight from an allowed origin without a key", async () => {
    const res = await api("/v1/chat/completions", {
      method: "OPTIONS",
      key: null,
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,x-session-id" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("x-session-id");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
  });

  it("names allowed origins only, and exposes the request id header", async () => {
    const ok = await api("/v1/models", { headers: { origin: "https://other.example" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://other.example");
    expect(ok.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const other = await api("/v1/models", { headers: { origin: "https://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("auth", () => {
  it("401 invalid_api_key without a key, with a malformed header, with a wrong key", async () => {
    await expectError(await api("/v1/models", { key: null }), 401, { type: "invalid_request_error", code: "invalid_api_key", param: null });
    await expectError(await api("/v1/models", { key: null, headers: { authorization: "Basic abc" } }), 401, { code: "invalid_api_key" });
    const body = await expectError(await api("/v1/models", { key: "sk-wrong-key-123456" }), 401, { code: "invalid_api_key" });
    expect(body.error.message).toBe("Incorrect API key provided: sk-wro****3456.");
  });

  it("keys are added and revoked at run time by an admin, with no redeploy", async () => {
    await expectError(await api("/v1/admin/keys", { json: { tenant: "t-new" } }), 403, { code: "forbidden" });
    const created = await api("/v1/admin/keys", { key: KEY_ADMIN, json: { tenant: "t-new", name: "ci", rpm: 7 } });
    expect(created.status).toBe(201);
    const record = (await created.json()) as { key: string; id: string; hash: string; tenant: string; rpm: number };
    expect(record).toMatchObject({ object: "api_key", tenant: "t-new", name: "ci", rpm: 7 });
    expect(record.key).toMatch(/^sk-petrel-[A-Za-z0-9_-]{43}$/);
    expect((await api("/v1/models", { key: record.key })).status).toBe(200);

    const list = (await (await api("/v1/admin/keys", { key: KEY_ADMIN })).json()) as { data: { id: string; key?: string }[] };
    expect(list.data.find((k) => k.id === record.id)).toBeDefined();
    expect(list.data.every((k) => k.key === undefined)).toBe(true);

    const revoked = await api(`/v1/admin/keys/${record.id}`, { method: "DELETE", key: KEY_ADMIN });
    expect(await revoked.json()).toEqual({ object: "api_key.deleted", id: record.hash, deleted: true });
    await expectError(await api("/v1/models", { key: record.key }), 401, { code: "invalid_api_key" });
  });

  it("a configured key can be revoked too", async () => {
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(KEY_REVOKE))), (b) => b.toString(16).padStart(2, "0")).join("");
    expect((await api("/v1/models", { key: KEY_REVOKE })).status).toBe(200);
    await api(`/v1/admin/keys/${digest}`, { method: "DELETE", key: KEY_ADMIN });
    await expectError(await api("/v1/models", { key: KEY_REVOKE }), 401, { code: "invalid_api_key" });
  });
});

describe("models", () => {
  it("lists the manifest in OpenAI's shape", async () => {
    const res = await api("/v1/models");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; data: { id: string; object: string; owned_by: string; petrel: Record<string, unknown> }[] };
    expect(body.object).toBe("list");
    const m = body.data.find((d) => d.id === "basics-q8");
    expect(m).toMatchObject({
      object: "model",
      owned_by: "petrel",
      petrel: { architecture: "llama", quantization: "Q8_0", size: 3644896, context_length: 512, n_ctx: 512, kv_type: "f32", chat_template: false },
    });
  });

  it("gets one model, 404 model_not_found for an unknown one", async () => {
    const res = await api("/v1/models/basics-q8");
    expect(((await res.json()) as { id: string }).id).toBe("basics-q8");
    await expectError(await api("/v1/models/nope"), 404, { type: "invalid_request_error", code: "model_not_found", param: "model" });
  });

  it("404 for an unknown model in a completion request, before any generation", async () => {
    const body = await expectError(await api("/v1/chat/completions", { json: { model: "no-such-model", messages: [{ role: "user", content: "hi" }] } }), 404, {
      code: "model_not_found",
      param: "model",
    });
    expect(body.error.message).toContain("'no-such-model' does not exist");
  });

  it("404 unknown_url for routes that do not exist", async () => {
    await expectError(await api("/v1/embeddingz"), 404, { code: "unknown_url" });
  });
});

describe("validation: every bad request is a 400 OpenAI error naming the field", () => {
  const chat = (extra: Record<string, unknown>) => ({ model: "basics-q8", messages: [{ role: "user", content: "hi" }], ...extra });
  const cases: [string, unknown, string | null, RegExp][] = [
    ["missing model", { messages: [{ role: "user", content: "hi" }] }, "model", /model/],
    ["empty messages", chat({ messages: [] }), "messages", /at least one message/],
    ["unknown role", chat({ messages: [{ role: "wizard", content: "x" }] }), "messages[0].role", /./],
    ["temperature above 2", chat({ temperature: 3 }), "temperature", /./],
    ["top_p of 0", chat({ top_p: 0 }), "top_p", /./],
    ["fractional top_k", chat({ top_k: 1.5 }), "top_k", /./],
    ["max_tokens 0", chat({ max_tokens: 0 }), "max_tokens", /./],
    ["n = 2", chat({ n: 2 }), "n", /n > 1 is not supported/],
    ["logit_bias with a non-id key", chat({ logit_bias: { abc: 1 } }), "logit_bias.abc", /token ids/],
    ["logit_bias above 100", chat({ logit_bias: { "5": 101 } }), "logit_bias.5", /./],
    ["logprobs", chat({ logprobs: true }), "logprobs", /logprobs are not supported/],
    ["tools", chat({ tools: [{ type: "function", function: { name: "f" } }] }), "tools", /tools are not supported/],
    ["stop of the wrong type", chat({ stop: 5 }), "stop", /./],
    ["a session id with spaces", chat({ session: "a b" }), "session", /session ids/],
    ["image content", chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), "messages[0].content", /./],
  ];
  for (const [name, body, param, message] of cases) {
    it(name, async () => {
      const err = await expectError(await api("/v1/chat/completions", { json: body }), 400, { type: "invalid_request_error", param });
      expect(err.error.message).toMatch(message);
    });
  }

  it("completions: batches of prompts, echo, an empty id list", async () => {
    await expectError(await api("/v1/completions", { json: { model: "basics-q8", prompt: ["a", "b"] } }), 400, { param: "prompt" });
    await expectError(await api("/v1/completions", { json: { model: "basics-q8", prompt: "a", echo: true } }), 400, { param: "echo" });
    await expectError(await api("/v1/completions", { json: { model: "basics-q8", prompt: [] } }), 400, { param: "prompt" });
  });

  it("malformed JSON is a 400 invalid_json", async () => {
    const res = await api("/v1/chat/completions", { body: "{not json", headers: { "content-type": "application/json" }, method: "POST" });
    await expectError(res, 400, { type: "invalid_request_error", code: "invalid_json" });
  });

  it("a token id outside the vocabulary is a 400 on prompt", async () => {
    const err = await expectError(await api("/v1/completions", { json: { model: "basics-q8", prompt: [1, 512], max_tokens: 1 } }), 400, { param: "prompt" });
    expect(err.error.message).toContain("Token id 512 is outside the vocabulary");
  });

  it("a session header that is not a valid id is a 400", async () => {
    await expectError(await api("/v1/chat/completions", { json: chat({}), headers: { "x-session-id": "x".repeat(200) } }), 400, { param: "session" });
  });
});

describe("413", () => {
  it("refuses a body above MAX_BODY_BYTES (declared length and streamed)", async () => {
    const big = JSON.stringify({ model: "basics-q8", messages: [{ role: "user", content: "x".repeat(70_000) }] });
    const err = await expectError(await api("/v1/chat/completions", { body: big, headers: { "content-type": "application/json" }, method: "POST" }), 413, {
      type: "invalid_request_error",
      code: "request_too_large",
    });
    expect(err.error.message).toContain("65536 bytes");
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    await expectError(await api("/v1/completions", { body: stream, headers: { "content-type": "application/json" }, method: "POST", duplex: "half" } as RequestInit), 413, {
      code: "request_too_large",
    });
  });
});
