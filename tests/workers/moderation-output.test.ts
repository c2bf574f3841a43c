/**
 * Output moderation of edge generation (SessionDO) inside workerd. The flagged text is derived
 * from an unmoderated run of the same greedy request (the tiny test model speaks deterministic
 * nonsense): a span in the middle of it becomes a tenant's block pattern, and the moderated run
 * must stop generating, end with finish_reason "content_filter", and send no byte of the span.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, parseSse, uploadModel } from "./helpers.ts";
import { NO_PII, tenantWithPolicy, UNMODERATED, uploadClassifier } from "./moderation-helpers.ts";
import { continuationText, referenceModel } from "./reference.ts";

const CHAT = "models/tiny-chat.gguf";
const MAX_TOKENS = 48;
const request = { model: "tiny-chat", messages: [{ role: "user", content: "Tell me a story." }], max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, return_token_ids: true };

interface Chunk {
  choices: { delta?: { content?: string }; finish_reason: string | null; token_ids?: number[] }[];
  usage?: { completion_tokens: number } | null;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The stream's raw bytes as text, and its events. */
async function rawStream(key: string, extra: Record<string, unknown> = {}): Promise<{ raw: string; chunks: Chunk[]; done: boolean }> {
  const res = await api("/v1/chat/completions", { key, json: { ...request, stream: true, stream_options: { include_usage: true }, ...extra } });
  expect(res.status).toBe(200);
  const raw = new TextDecoder().decode(await res.arrayBuffer());
  const events = parseSse(raw);
  return { raw, chunks: events.filter((e): e is Chunk => e !== "[DONE]"), done: events.at(-1) === "[DONE]" };
}

const content = (chunks: Chunk[]) => chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
const tokenIds = (chunks: Chunk[]) => chunks.flatMap((c) => c.choices[0]?.token_ids ?? []);
const finish = (chunks: Chunk[]) => chunks.map((c) => c.choices[0]?.finish_reason).find((f) => f != null);

let full: { text: string; tokens: number[] };
/** A span of the unmoderated reply, past the first window, that occurs there once. */
let span: { text: string; start: number };

beforeAll(async () => {
  await uploadModel("tiny-chat", CHAT, { nCtx: 512 });
  await uploadClassifier();
  const baseline = await rawStream(await tenantWithPolicy(UNMODERATED));
  full = { text: content(baseline.chunks), tokens: tokenIds(baseline.chunks) };
  expect(full.tokens).toHaveLength(MAX_TOKENS);
  for (let start = Math.floor(full.text.length / 2); start + 6 <= full.text.length; start++) {
    const text = full.text.slice(start, start + 6);
    if (text.trim().length === 6 && full.text.indexOf(text) === start) {
      span = { text, start };
      break;
    }
  }
  expect(span, `no usable span in ${JSON.stringify(full.text)}`).toBeDefined();
  expect(span.start).toBeGreaterThan(40);
});

/** A tenant whose only rule blocks the span, with a 16-character window checked every 8. */
const blockingSpan = () =>
  tenantWithPolicy({
    checks: { rules: true, classifier: false },
    pii: NO_PII,
    rules: { patterns: [{ id: "derived-span", pattern: escapeRegExp(span.text), flags: "u", action: "block" }] },
    output: { windowChars: 16, stepChars: 8 },
  });

describe("streaming output guard (SessionDO)", () => {
  it("the baseline: with a guard that finds nothing, the stream is the same text and tokens", async () => {
    const key = await tenantWithPolicy({ checks: { rules: true, classifier: true }, pii: NO_PII, output: { windowChars: 16, stepChars: 8 } });
    const { chunks, done } = await rawStream(key);
    expect(content(chunks)).toBe(full.text);
    expect(tokenIds(chunks)).toEqual(full.tokens);
    expect(finish(chunks)).toBe("length");
    expect(done).toBe(true);
  });

  it("stops generating on a hit, ends with content_filter, and no byte of the flagged span is sent", async () => {
    const session = `cut-${crypto.randomUUID().slice(0, 8)}`;
    const key = await blockingSpan();
    const { raw, chunks, done } = await rawStream(key, { session });
    const sent = content(chunks);
    expect(full.text.startsWith(sent)).toBe(true);
    expect(sent.length).toBeLessThanOrEqual(span.start);
    expect(raw).not.toContain(span.text);
    expect(raw).not.toContain(JSON.stringify(span.text).slice(1, -1));
    expect(finish(chunks)).toBe("content_filter");
    expect(done).toBe(true);
    // the token ids sent are a prefix of the unmoderated run's, and their text lies within the text sent
    // (an id is held back until its whole text is released, e.g. a space the decoder has not cleared yet)
    const ids = tokenIds(chunks);
    expect(ids).toEqual(full.tokens.slice(0, ids.length));
    const { tokenizer } = await referenceModel(CHAT);
    expect(sent.startsWith(continuationText(tokenizer, ids))).toBe(true);
    // generation stopped early: fewer tokens were generated than the request allowed
    const usage = chunks.find((c) => c.usage)?.usage;
    expect(usage!.completion_tokens).toBeLessThan(MAX_TOKENS);
    // the stored reply is what was sent, marked content_filter
    const history = (await (await api(`/v1/sessions/${session}`, { key })).json()) as { messages: { role: string; content: string; finish_reason?: string; status: string }[] };
    expect(history.messages.at(-1)).toMatchObject({ role: "assistant", content: sent, finish_reason: "content_filter", status: "complete" });
  });

  it("non-stream: the whole reply is checked before anything is released", async () => {
    const res = await api("/v1/chat/completions", { key: await blockingSpan(), json: request });
    const body = (await res.json()) as { choices: { message: { content: string }; finish_reason: string; token_ids: number[] }[] };
    expect(res.status).toBe(200);
    expect(body.choices[0]).toMatchObject({ message: { content: "" }, finish_reason: "content_filter", token_ids: [] });
    expect(JSON.stringify(body)).not.toContain(span.text);
  });

  it("/v1/completions streams are guarded the same way", async () => {
    const key = await tenantWithPolicy(UNMODERATED);
    const prompt = "Once upon a time";
    const plain = await api("/v1/completions", { key, json: { model: "tiny-chat", prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true } });
    const text = ((await plain.json()) as { choices: { text: string }[] }).choices[0]!.text;
    const target = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 6);
    const guarded = await tenantWithPolicy({ checks: { rules: true, classifier: false }, pii: NO_PII, rules: { patterns: [{ id: "t", pattern: escapeRegExp(target), flags: "u" }] }, output: { windowChars: 16, stepChars: 8 } });
    const res = await api("/v1/completions", { key: guarded, json: { model: "tiny-chat", prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, stream: true } });
    const raw = new TextDecoder().decode(await res.arrayBuffer());
    const chunks = parseSse(raw).filter((e) => e !== "[DONE]") as { choices: { text: string; finish_reason: string | null }[] }[];
    const sent = chunks.map((c) => c.choices[0]!.text).join("");
    expect(text.startsWith(sent)).toBe(true);
    expect(raw).not.toContain(target);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("content_filter");
  });

  it("PII the policy redacts is replaced in the streamed text", async () => {
    // the derived span stands in for a secret: a redact rule replaces it with its placeholder
    const key = await tenantWithPolicy({ checks: { rules: true, classifier: false }, pii: NO_PII, rules: { patterns: [{ id: "span", pattern: escapeRegExp(span.text), flags: "u", action: "redact" }] }, output: { windowChars: 16, stepChars: 8 } });
    const { raw, chunks } = await rawStream(key);
    expect(content(chunks)).toBe(full.text.replaceAll(span.text, "[REDACTED_SPAN]"));
    expect(raw).not.toContain(span.text);
    // the ids of the redacted text are withheld too: the ids sent do not spell it
    const ids = tokenIds(chunks);
    expect(ids.length).toBeLessThan(full.tokens.length);
    const { tokenizer } = await referenceModel(CHAT);
    expect(continuationText(tokenizer, ids)).not.toContain(span.text);
    expect(finish(chunks)).toBe("length");
  });
});
