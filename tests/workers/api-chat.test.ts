/**
 * Generation through the API inside workerd, held token for token to the engine run directly:
 * chat and completions, stream and non-stream, finish reasons, stop strings, sampling
 * parameters, usage, the context window.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { servingBackend } from "../../durable-objects/backends.ts";
import { api, parseSse, testEnv, uploadModel, type ErrorBody } from "./helpers.ts";
import { continuationText, referenceModel, referenceTokens } from "./reference.ts";

const CHAT = "models/tiny-chat.gguf";
const Q8 = "fixtures/reference/llama-Q8_0.gguf";

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}
interface ChatCompletion {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: { index: number; message: { role: string; content: string }; finish_reason: string; token_ids?: number[] }[];
  usage: Usage;
  prompt_token_ids?: number[];
}
interface TextCompletion {
  id: string;
  system_fingerprint: string;
  object: string;
  model: string;
  choices: { index: number; text: string; finish_reason: string; token_ids?: number[] }[];
  usage: Usage;
  prompt_token_ids?: number[];
}
interface Chunk {
  id: string;
  object: string;
  model: string;
  choices: { index: number; delta?: { role?: string; content?: string }; text?: string; finish_reason: string | null; token_ids?: number[] }[];
  usage?: Usage | null;
}

beforeAll(async () => {
  await uploadModel("tiny-chat", CHAT, { nCtx: 256 });
  await uploadModel("llama-q8", Q8);
});

const hello = [{ role: "system", content: "You are terse." }, { role: "user", content: "Say hello to the edge." }];

describe("chat completions", () => {
  it("non-stream: OpenAI shape, greedy tokens equal the engine's, usage adds up", async () => {
    const res = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: hello, max_tokens: 12, temperature: 0, return_token_ids: true } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ChatCompletion;
    expect(body.object).toBe("chat.completion");
    expect(body.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(body.model).toBe("tiny-chat");
    const choice = body.choices[0]!;
    expect(choice.message.role).toBe("assistant");
    const expected = await referenceTokens(CHAT, body.prompt_token_ids!, 12);
    expect(choice.token_ids).toEqual(expected);
    const { tokenizer } = await referenceModel(CHAT);
    const eog = tokenizer.isEog(expected.at(-1)!);
    expect(choice.finish_reason).toBe(eog ? "stop" : "length");
    expect(choice.message.content).toBe(continuationText(tokenizer, eog ? expected.slice(0, -1) : expected));
    expect(body.usage).toEqual({
      prompt_tokens: body.prompt_token_ids!.length,
      completion_tokens: expected.length,
      total_tokens: body.prompt_token_ids!.length + expected.length,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  it("the prompt is the chat template's rendering (ChatML fallback), tokenized with special tokens", async () => {
    const res = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: hello, max_tokens: 1, return_token_ids: true } });
    const body = (await res.json()) as ChatCompletion;
    const { tokenizer } = await referenceModel(CHAT);
    const { renderChat } = await import("../../kernels/chat/index.ts");
    const text = await renderChat(undefined, hello, { addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>" });
    expect(text).toContain("<|im_start|>user\nSay hello to the edge.<|im_end|>");
    expect(body.prompt_token_ids).toEqual(tokenizer.encode(text, { addSpecial: !text.startsWith("<s>"), parseSpecial: true }));
  });

  it("stream: role first, content deltas, finish chunk, usage chunk, [DONE]; same text as non-stream", async () => {
    const json = { model: "tiny-chat", messages: hello, max_tokens: 10, temperature: 0 };
    const plain = (await (await api("/v1/chat/completions", { json })).json()) as ChatCompletion;
    const res = await api("/v1/chat/completions", { json: { ...json, stream: true, stream_options: { include_usage: true } } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = parseSse(await res.text());
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1) as Chunk[];
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]!.id && c.model === "tiny-chat")).toBe(true);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: "assistant", content: "" });
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual(plain.usage);
    const finish = chunks.at(-2)!;
    expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: plain.choices[0]!.finish_reason });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? "")).join("");
    expect(text).toBe(plain.choices[0]!.message.content);
  });

  it("without include_usage no usage field appears in the stream", async () => {
    const res = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: hello, max_tokens: 3, stream: true } });
    const chunks = parseSse(await res.text()).slice(0, -1) as Chunk[];
    expect(chunks.every((c) => !("usage" in c))).toBe(true);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("length");
  });

  it("a seed makes sampling repeatable, and matches the engine's sampler with that seed", async () => {
    const sampling = { temperature: 0.9, top_k: 40, top_p: 0.95, min_p: 0.02, seed: 1234, frequency_penalty: 0.5, presence_penalty: 0.3, repetition_penalty: 1.1 };
    const json = { model: "tiny-chat", messages: hello, max_tokens: 12, return_token_ids: true, ...sampling };
    const a = (await (await api("/v1/chat/completions", { json })).json()) as ChatCompletion;
    const b = (await (await api("/v1/chat/completions", { json })).json()) as ChatCompletion;
    expect(b.choices[0]!.token_ids).toEqual(a.choices[0]!.token_ids);
    const expected = await referenceTokens(CHAT, a.prompt_token_ids!, 12, {
      sampling: { temperature: 0.9, topK: 40, topP: 0.95, minP: 0.02, seed: 1234, frequencyPenalty: 0.5, presencePenalty: 0.3, repeatPenalty: 1.1 },
    });
    expect(a.choices[0]!.token_ids).toEqual(expected);
    const other = (await (await api("/v1/chat/completions", { json: { ...json, seed: 99 } })).json()) as ChatCompletion;
    expect(other.choices[0]!.token_ids).not.toEqual(a.choices[0]!.token_ids);
  });

  it("logit_bias steers every token", async () => {
    const body = (await (await api("/v1/chat/completions", {
      json: { model: "tiny-chat", messages: hello, max_tokens: 5, temperature: 0.7, seed: 3, logit_bias: { "1000": 100 }, return_token_ids: true },
    })).json()) as ChatCompletion;
    expect(body.choices[0]!.token_ids).toEqual([1000, 1000, 1000, 1000, 1000]);
  });

  it("a stop string ends the reply before it (finish_reason stop), also when it spans tokens", async () => {
    const free = (await (await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: hello, max_tokens: 16, temperature: 0, ignore_eos: true } })).json()) as ChatCompletion;
    const text = free.choices[0]!.message.content;
    expect(text.length).toBeGreaterThan(6);
    // A stop string starting inside the reply: two characters, likely spanning two tokens.
    const at = Math.floor(text.length / 2);
    const stop = text.slice(at, at + 2);
    const first = text.indexOf(stop);
    for (const stream of [false, true]) {
      const res = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: hello, max_tokens: 16, temperature: 0, ignore_eos: true, stop: [stop, "\u0000never"], stream } });
      if (stream) {
        const chunks = parseSse(await res.text()).slice(0, -1) as Chunk[];
        expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(text.slice(0, first));
        expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("stop");
      } else {
        const body = (await res.json()) as ChatCompletion;
        expect(body.choices[0]!.message.content).toBe(text.slice(0, first));
        expect(body.choices[0]!.finish_reason).toBe("stop");
      }
    }
  });

  it("context window: prompt + max_tokens over n_ctx is 400 context_length_exceeded naming the numbers", async () => {
    const long = [{ role: "user", content: "edge ".repeat(300) }];
    const res = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: long, max_tokens: 10 } });
    expect(res.status).toBe(400);
    const err = (await res.json()) as ErrorBody;
    expect(err.error).toMatchObject({ type: "invalid_request_error", code: "context_length_exceeded", param: "messages" });
    expect(err.error.message).toMatch(/maximum context length is 256 tokens\. However, you requested \d+ tokens \(\d+ in the messages, 10 in the completion\)/);
  });

  it('truncation: "auto" drops the oldest turns but keeps the system prompt', async () => {
    const turns = [{ role: "system", content: "Keep me." }];
    for (let i = 0; i < 12; i++) turns.push({ role: i % 2 === 0 ? "user" : "assistant", content: `turn ${i} `.repeat(8) });
    turns.push({ role: "user", content: "last question" });
    const refused = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: turns, max_tokens: 8 } });
    expect(refused.status).toBe(400);
    const res = await api("/v1/chat/completions", { json: { model: "tiny-chat", messages: turns, max_tokens: 8, truncation: "auto", return_token_ids: true } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ChatCompletion;
    expect(body.usage.prompt_tokens + 8).toBeLessThanOrEqual(256);
    const { tokenizer } = await referenceModel(CHAT);
    const prompt = tokenizer.decode(body.prompt_token_ids!);
    expect(prompt).toContain("Keep me.");
    expect(prompt).toContain("last question");
    expect(prompt).not.toContain("turn 0 ");
    expect(prompt).toContain("turn 11 ");
  });
});

describe("completions", () => {
  it("a token-id prompt, greedy: the engine's tokens (llama-Q8_0 fixture, run 1's prompt), non-stream and stream", async () => {
    const ref = (await (await testFixtureJson()).json()) as { runs: { prompt: number[]; tokens: number[]; tokens_f64: number[] }[] };
    const prompt = ref.runs[1]!.prompt;
    const expected = await referenceTokens(Q8, prompt, 8, { ignoreEos: true });
    const res = await api("/v1/completions", { json: { model: "llama-q8", prompt, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true } });
    const body = (await res.json()) as TextCompletion;
    expect(body.object).toBe("text_completion");
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.choices[0]!.token_ids).toEqual(expected);
    // And it is the reference's: llama.cpp's own tokens for the wasm backend (Q8 activations, as
    // llama.cpp), the float64 forward's for the js backend (float activations).
    expect(body.system_fingerprint).toBe(`petrel-${servingBackend(testEnv.BACKEND)}`);
    expect(expected).toEqual((servingBackend(testEnv.BACKEND) === "wasm" ? ref.runs[1]!.tokens : ref.runs[1]!.tokens_f64).slice(0, 8));
    expect(body.choices[0]!.finish_reason).toBe("length");
    expect(body.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 8, total_tokens: 48 });
    const { tokenizer } = await referenceModel(Q8);
    expect(body.choices[0]!.text).toBe(continuationText(tokenizer, expected));

    const streamed = await api("/v1/completions", { json: { model: "llama-q8", prompt: [prompt], max_tokens: 8, temperature: 0, ignore_eos: true, stream: true, return_token_ids: true } });
    const chunks = parseSse(await streamed.text()).slice(0, -1) as Chunk[];
    expect(chunks.every((c) => c.object === "text_completion")).toBe(true);
    expect(chunks.flatMap((c) => c.choices[0]!.token_ids ?? [])).toEqual(expected);
    expect(chunks.map((c) => c.choices[0]!.text).join("")).toBe(body.choices[0]!.text);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("length");
  });

  it("a text prompt is tokenized with BOS; max_tokens defaults to the rest of the context", async () => {
    const body = (await (await api("/v1/completions", { json: { model: "tiny-chat", prompt: "Once upon a time", max_tokens: 4, temperature: 0, return_token_ids: true } })).json()) as TextCompletion;
    const { tokenizer } = await referenceModel(CHAT);
    expect(body.prompt_token_ids).toEqual(tokenizer.encode("Once upon a time", { addSpecial: true, parseSpecial: true }));
    expect(body.prompt_token_ids![0]).toBe(tokenizer.bos);
    expect(body.choices[0]!.token_ids).toEqual(await referenceTokens(CHAT, body.prompt_token_ids!, 4));
  });

  it("prompt + max_tokens over n_ctx is 400 context_length_exceeded on prompt", async () => {
    const res = await api("/v1/completions", { json: { model: "llama-q8", prompt: [1, 2, 3], max_tokens: 510 } });
    const err = (await res.json()) as ErrorBody;
    expect(res.status).toBe(400);
    expect(err.error).toMatchObject({ code: "context_length_exceeded", param: "prompt" });
    expect(err.error.message).toContain("maximum context length is 512 tokens. However, you requested 513 tokens (3 in the prompt, 510 in the completion)");
  });
});

function testFixtureJson(): Promise<Response> {
  return import("./helpers.ts").then((h) => h.testEnv.FIXTURES.fetch("https://fixtures/fixtures/reference/llama-Q8_0.json"));
}
