/**
 * Sessions inside workerd: persisted history, KV-cache prefix reuse with exact prefilled counts,
 * the same answers with and without the cache, edits, restarts (also mid-stream), disconnects,
 * one turn at a time, tenant isolation, deletion.
 */
import { abortAllDurableObjects, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { SessionDO } from "../../durable-objects/session.ts";
import { sessionName } from "../../workers/app.ts";
import { api, KEY_B, parseSse, testEnv, uploadModel, type ErrorBody } from "./helpers.ts";
import { referenceModel, referenceTokens } from "./reference.ts";

const CHAT = "models/tiny-chat.gguf";
const Q8 = "fixtures/reference/llama-Q8_0.gguf";

interface Completion {
  choices: { text?: string; message?: { content: string }; finish_reason: string | null; token_ids: number[] }[];
  usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number } };
  prompt_token_ids: number[];
}
interface History {
  object: string;
  id: string;
  messages: { role: string; content: string | null; status: string; finish_reason?: string; token_ids?: number[]; request_id?: string }[];
}

let P: number[];

beforeAll(async () => {
  await uploadModel("sess-chat", CHAT, { nCtx: 512 });
  await uploadModel("sess-q8", Q8);
  // Long replies for the tests that interrupt one: 4096 positions leave room for 4000 tokens.
  await uploadModel("sess-long", CHAT, { nCtx: 4096 });
  const ref = (await (await testEnv.FIXTURES.fetch("https://fixtures/fixtures/reference/llama-Q8_0.json")).json()) as { runs: { prompt: number[] }[] };
  P = ref.runs[1]!.prompt;
});

const stubOf = (tenant: string, session: string) => testEnv.SESSIONS.get(testEnv.SESSIONS.idFromName(sessionName(tenant, session)));

async function complete(session: string | null, prompt: number[], maxTokens: number, key?: string): Promise<Completion> {
  const res = await api("/v1/completions", {
    key,
    headers: session ? { "x-session-id": session } : {},
    json: { model: "sess-q8", prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, return_token_ids: true },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Completion;
}

async function chat(session: string | null, messages: { role: string; content: string }[], extra: Record<string, unknown> = {}, key?: string): Promise<Completion> {
  const res = await api("/v1/chat/completions", {
    key,
    json: { model: "sess-chat", messages, max_tokens: 8, temperature: 0, return_token_ids: true, ...(session && { session }), ...extra },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Completion;
}

async function history(session: string, key?: string): Promise<History> {
  const res = await api(`/v1/sessions/${session}`, { key });
  expect(res.status).toBe(200);
  return (await res.json()) as History;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

describe("KV-cache prefix reuse", () => {
  it("a follow-up prefills exactly the new tokens, and answers as a run without the cache does; an edit cuts the cache at the first difference", async () => {
    const t1 = await complete("prefix", P, 6);
    expect(t1.usage.prompt_tokens_details.cached_tokens).toBe(0);
    const c1 = t1.choices[0]!.token_ids;

    // Turn 2 resends the whole sequence plus three new ids. The cache holds P and all of c1 but
    // its last token (a sampled token is fed only at the next step), so 1 + 3 are prefilled.
    const p2 = [...P, ...c1, 11, 12, 13];
    const t2 = await complete("prefix", p2, 6);
    expect(t2.usage.prompt_tokens).toBe(49);
    expect(t2.usage.prompt_tokens_details.cached_tokens).toBe(P.length + c1.length - 1);
    expect(t2.usage.prompt_tokens - t2.usage.prompt_tokens_details.cached_tokens).toBe(4);

    const cold = await complete(null, p2, 6);
    expect(cold.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(t2.choices[0]!.token_ids).toEqual(cold.choices[0]!.token_ids);
    expect(t2.choices[0]!.token_ids).toEqual(await referenceTokens(Q8, p2, 6, { ignoreEos: true }));

    // An edit of id 10: the cache is cut there and the answer is the one for the edited prompt.
    const p3 = [...p2];
    p3[10] = (p3[10]! + 1) % 512;
    const t3 = await complete("prefix", p3, 6);
    expect(t3.usage.prompt_tokens_details.cached_tokens).toBe(10);
    expect(t3.choices[0]!.token_ids).toEqual((await complete(null, p3, 6)).choices[0]!.token_ids);

    // The same prompt again: everything but the last token comes from the cache.
    const t4 = await complete("prefix", p3, 6);
    expect(t4.usage.prompt_tokens_details.cached_tokens).toBe(p3.length - 1);
    expect(t4.choices[0]!.token_ids).toEqual(t3.choices[0]!.token_ids);
  });

  it("chat: a follow-up that sends only the new message reuses the whole previous turn; same answer as an OpenAI-style resend without a cache", async () => {
    const first = [{ role: "system", content: "Be brief." }, { role: "user", content: "Name a bird." }];
    const t1 = await chat("chat-append", first);
    const reply = t1.choices[0]!.message!.content;
    const t2 = await chat("chat-append", [{ role: "user", content: "Another one?" }]);

    const resend = [...first, { role: "assistant", content: reply }, { role: "user", content: "Another one?" }];
    const cold = await chat(null, resend);
    expect(t2.prompt_token_ids).toEqual(cold.prompt_token_ids);
    expect(t2.choices[0]!.token_ids).toEqual(cold.choices[0]!.token_ids);

    const kvHeld = [...t1.prompt_token_ids, ...t1.choices[0]!.token_ids.slice(0, -1)];
    const expectedCached = Math.min(commonPrefix(kvHeld, t2.prompt_token_ids), t2.prompt_token_ids.length - 1);
    expect(t2.usage.prompt_tokens_details.cached_tokens).toBe(expectedCached);
    expect(expectedCached).toBeGreaterThanOrEqual(t1.prompt_token_ids.length);

    // The resend style in the same session: same answer again, the previous turn reused.
    const t3 = await chat("chat-append", [...resend, { role: "assistant", content: t2.choices[0]!.message!.content }, { role: "user", content: "And a fish?" }]);
    expect(t3.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(t2.prompt_token_ids.length);
    const h = await history("chat-append");
    expect(h.messages.map((m) => [m.role, m.status])).toEqual([
      ["system", "complete"], ["user", "complete"], ["assistant", "complete"], ["user", "complete"], ["assistant", "complete"], ["user", "complete"], ["assistant", "complete"],
    ]);
    expect(h.messages[2]!.content).toBe(reply);
    expect(h.messages[2]!.token_ids).toEqual(t1.choices[0]!.token_ids);
  });

  it("editing an earlier message replaces the stored history from there on; the answer equals a fresh run", async () => {
    const conv = [{ role: "user", content: "Count to three." }];
    const t1 = await chat("chat-edit", conv);
    const edited = [{ role: "user", content: "Count to four." }, { role: "assistant", content: t1.choices[0]!.message!.content }, { role: "user", content: "Again." }];
    const t2 = await chat("chat-edit", edited);
    const cold = await chat(null, edited);
    expect(t2.choices[0]!.token_ids).toEqual(cold.choices[0]!.token_ids);
    const firstDiff = commonPrefix(t1.prompt_token_ids, t2.prompt_token_ids);
    expect(firstDiff).toBeLessThan(t1.prompt_token_ids.length);
    expect(t2.usage.prompt_tokens_details.cached_tokens).toBe(firstDiff);
    const h = await history("chat-edit");
    expect(h.messages.map((m) => m.content)).toEqual(["Count to four.", t1.choices[0]!.message!.content, "Again.", t2.choices[0]!.message!.content]);
  });
});

describe("persistence", () => {
  it("history survives an object restart; the cache is rebuilt from the stored conversation and the answer is the same", async () => {
    const first = [{ role: "user", content: "Tell me about R2." }];
    const a1 = await chat("restart", first);
    const w1 = await chat("warm", first);
    expect(w1.choices[0]!.token_ids).toEqual(a1.choices[0]!.token_ids);
    const before = await history("restart");

    const stub = stubOf("tenant-a", "restart");
    expect(await runInDurableObject(stub, (o: SessionDO) => o.stats().cachedTokens)).toBeGreaterThan(0);
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (o: SessionDO) => o.stats())).toMatchObject({ hasCache: false, cachedTokens: 0 });
    expect(await history("restart")).toEqual(before);

    const follow = [{ role: "user", content: "And Durable Objects?" }];
    const a2 = await chat("restart", follow);
    const w2 = await chat("warm", follow);
    expect(a2.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(w2.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(a2.prompt_token_ids).toEqual(w2.prompt_token_ids);
    expect(a2.choices[0]!.token_ids).toEqual(w2.choices[0]!.token_ids);
  });

  it("a refused turn (context too long) stores nothing", async () => {
    await chat("refused", [{ role: "user", content: "Short." }], { max_tokens: 2 });
    const before = await history("refused");
    const res = await api("/v1/chat/completions", { json: { model: "sess-chat", session: "refused", messages: [{ role: "user", content: "long ".repeat(600) }], max_tokens: 4 } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.code).toBe("context_length_exceeded");
    expect(await history("refused")).toEqual(before);
  });

  it("a reply cut mid-stream by a restart is stored as sent and marked interrupted", async () => {
    const res = await api("/v1/chat/completions", {
      json: { model: "sess-long", session: "cut", messages: [{ role: "user", content: "Talk for a long time." }], max_tokens: 4000, temperature: 0, ignore_eos: true, stream: true },
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let raw = "";
    while ((raw.match(/"content":"[^"]+"/g) ?? []).length < 4) {
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended early");
      raw += decoder.decode(value, { stream: true });
    }
    await abortAllDurableObjects();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        raw += decoder.decode(value, { stream: true });
      }
    } catch {
      // the object went away mid-stream
    }
    expect(raw).not.toContain("[DONE]");
    const received = (parseSse(raw.slice(0, raw.lastIndexOf("\n\n") + 2)) as { choices: { delta: { content?: string } }[] }[])
      .map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(received.length).toBeGreaterThan(0);

    const h = await history("cut");
    const reply = h.messages.at(-1)!;
    expect(reply).toMatchObject({ role: "assistant", status: "interrupted" });
    expect(reply.finish_reason).toBeUndefined();
    expect(reply.content!.startsWith(received)).toBe(true);
    expect(reply.token_ids!.length).toBeLessThan(4000);
    expect(h.messages.at(-2)).toMatchObject({ role: "user", content: "Talk for a long time.", status: "complete" });

    // The session goes on; the interrupted reply is part of the conversation.
    const next = await chat("cut", [{ role: "user", content: "Go on." }], { max_tokens: 2, model: "sess-long" });
    const { tokenizer } = await referenceModel(CHAT);
    expect(tokenizer.decode(next.prompt_token_ids)).toContain(reply.content!);
  });

  it("a client that disconnects stops generation; what it was sent stays stored", async () => {
    const res = await api("/v1/chat/completions", {
      json: { model: "sess-long", session: "gone", messages: [{ role: "user", content: "Go." }], max_tokens: 4000, temperature: 0, ignore_eos: true, stream: true },
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel();

    let h: History;
    const deadline = Date.now() + 20_000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      h = await history("gone");
    } while (h.messages.at(-1)!.status === "streaming" && Date.now() < deadline);
    const reply = h.messages.at(-1)!;
    expect(reply.status).toBe("interrupted");
    expect(reply.token_ids!.length).toBeLessThan(4000);
    const stats = await runInDurableObject(stubOf("tenant-a", "gone"), (o: SessionDO) => o.stats());
    expect(stats.busy).toBe(false);
    expect((await chat("gone", [{ role: "user", content: "Hi" }], { max_tokens: 1, model: "sess-long" })).choices[0]!.finish_reason).toBe("length");
  });
});

describe("one turn at a time", () => {
  it("a second request on a session that is generating gets 409 session_busy with Retry-After", async () => {
    const res = await api("/v1/chat/completions", {
      json: { model: "sess-long", session: "busy", messages: [{ role: "user", content: "Long answer please." }], max_tokens: 4000, temperature: 0, ignore_eos: true, stream: true },
    });
    const reader = res.body!.getReader();
    await reader.read();
    const second = await api("/v1/chat/completions", { json: { model: "sess-long", session: "busy", messages: [{ role: "user", content: "Me too." }], max_tokens: 1 } });
    expect(second.status).toBe(409);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(((await second.json()) as ErrorBody).error).toMatchObject({ type: "invalid_request_error", code: "session_busy" });
    const del = await api("/v1/sessions/busy", { method: "DELETE" });
    expect(del.status).toBe(409);
    // Another session of the same tenant is not blocked.
    expect((await chat("not-busy", [{ role: "user", content: "Hi" }], { max_tokens: 1 })).choices).toHaveLength(1);
    await reader.cancel();
  });
});

describe("tenants and deletion", () => {
  it("tenants cannot reach each other's sessions, even with the same session id", async () => {
    await chat("same-name", [{ role: "user", content: "secret of tenant A" }], { max_tokens: 2 });
    expect((await api("/v1/sessions/same-name", { key: KEY_B })).status).toBe(404);
    const b = await chat("same-name", [{ role: "user", content: "hello from B" }], { max_tokens: 2 }, KEY_B);
    const { tokenizer } = await referenceModel(CHAT);
    const promptB = tokenizer.decode(b.prompt_token_ids);
    expect(promptB).toContain("hello from B");
    expect(promptB).not.toContain("secret of tenant A");
    expect(b.usage.prompt_tokens_details.cached_tokens).toBe(0);
    const a = await history("same-name");
    expect(a.messages.map((m) => m.content)).toEqual(["secret of tenant A", expect.any(String)]);
    const hb = await history("same-name", KEY_B);
    expect(hb.messages[0]!.content).toBe("hello from B");
  });

  it("DELETE forgets a session; GET and DELETE of an unknown session are 404", async () => {
    await chat("doomed", [{ role: "user", content: "Remember me?" }], { max_tokens: 1 });
    const del = await api("/v1/sessions/doomed", { method: "DELETE" });
    expect(await del.json()).toEqual({ object: "session.deleted", id: "doomed", deleted: true });
    const get = await api("/v1/sessions/doomed");
    expect(get.status).toBe(404);
    expect(((await get.json()) as ErrorBody).error.code).toBe("session_not_found");
    expect((await api("/v1/sessions/doomed", { method: "DELETE" })).status).toBe(404);
    const again = await chat("doomed", [{ role: "user", content: "Hi again" }], { max_tokens: 1 });
    expect(again.usage.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it("the worker and the object log the same request id", async () => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
      original(...args);
    };
    try {
      const res = await api("/v1/chat/completions", { headers: { "x-request-id": "trace-me-123" }, json: { model: "sess-chat", session: "logged", messages: [{ role: "user", content: "Hi" }], max_tokens: 1 } });
      expect(res.headers.get("x-request-id")).toBe("trace-me-123");
      await res.text();
    } finally {
      console.log = original;
    }
    const parsed = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { component: string; request_id: string; msg: string });
    expect(parsed.some((l) => l.component === "worker" && l.request_id === "trace-me-123" && l.msg === "request")).toBe(true);
    expect(parsed.some((l) => l.component === "session" && l.request_id === "trace-me-123" && l.msg === "turn done")).toBe(true);
    expect((await history("logged")).messages.every((m) => m.request_id === "trace-me-123")).toBe(true);
  });
});
