/**
 * End to end: the worker started the way `npm start` starts it (scripts/start.ts → wrangler dev on
 * 127.0.0.1, its own local state), fixture models uploaded with `petrel upload`'s code while it
 * runs, and the official `openai` client driving it over HTTP.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadModel } from "../scripts/cli/upload.ts";
import { startWorker, type WorkerProcess } from "../scripts/origin/spawn-worker.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const REF = join(ROOT, "tests/fixtures/reference");

interface Run {
  prompt: number[];
  tokens: number[];
  gap: number[];
  std_steps: number[];
  tokens_f64: number[];
  gap_f64: number[];
}
const runsOf = (name: string) => (JSON.parse(readFileSync(join(REF, `${name}.json`), "utf8")) as { runs: Run[] }).runs;

let worker: WorkerProcess;
let state: string;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "petrel-e2e-"));
  worker = await startWorker({ state, demo: true });
  base = worker.url;
  for (const name of ["llama-F32", "llama-Q8_0"]) {
    const file = join(REF, `${name}.gguf`);
    await uploadModel(file, new Uint8Array(readFileSync(file)), { id: name.toLowerCase(), persistTo: state });
  }
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-petrel-local", maxRetries: 0 });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  rmSync(state, { recursive: true, force: true });
});

type WithIds<T> = T & { choices: (T extends { choices: (infer C)[] } ? C & { token_ids: number[] } : never)[] };

/** Greedy tokens equal the reference's up to its first near-tie (gap < 2t, t = scale·std). */
function expectGreedyMatch(tokens: number[], ref: number[], gap: number[], std: number[], scale: number): number {
  let s = 0;
  for (; s < ref.length; s++) {
    if (gap[s]! < 2 * scale * std[s]!) break;
    expect(tokens[s], `step ${s}`).toBe(ref[s]);
  }
  return s;
}

describe("npm start + the openai client", () => {
  it("serves the demo model and the uploaded fixtures", async () => {
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["petrel-demo", "llama-f32", "llama-q8_0"]));
    const demo = await client.models.retrieve("petrel-demo");
    expect(demo).toMatchObject({ id: "petrel-demo", object: "model", owned_by: "petrel" });
  });

  it("/v1/completions with a token-id prompt and greedy decoding returns llama.cpp's reference tokens", async () => {
    const run = runsOf("llama-F32")[1]!;
    const res = (await client.completions.create({
      model: "llama-f32",
      prompt: run.prompt,
      max_tokens: 32,
      temperature: 0,
      // @ts-expect-error Petrel/vLLM extensions
      ignore_eos: true,
      return_token_ids: true,
    })) as unknown as WithIds<OpenAI.Completions.Completion>;
    expect(res.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 32 });
    // F32: llama.cpp's own greedy continuation, all 32 tokens — although step 0 is a near-tie
    // (gap 0.039), so the fixture rule alone would accept any continuation.
    expect(res.choices[0]!.token_ids).toEqual(run.tokens);

    const q8 = runsOf("llama-Q8_0")[1]!;
    const r8 = (await client.completions.create({
      model: "llama-q8_0",
      prompt: q8.prompt,
      max_tokens: 32,
      temperature: 0,
      // @ts-expect-error Petrel/vLLM extensions
      ignore_eos: true,
      return_token_ids: true,
    })) as unknown as WithIds<OpenAI.Completions.Completion>;
    // Quantized files, by the fixture rule: a backend keeping float activations (js) is held to the
    // float64 reference at 1e-2·std; one quantizing activations (wasm) to llama.cpp at 0.15·std.
    if (r8.system_fingerprint === "petrel-js") {
      expect(r8.choices[0]!.token_ids).toEqual(q8.tokens_f64);
    } else {
      expect(r8.system_fingerprint).toBe("petrel-wasm");
      expectGreedyMatch(r8.choices[0]!.token_ids, q8.tokens, q8.gap, q8.std_steps, 0.15);
      // In fact all 32 of llama.cpp's tokens, past the near-ties the rule allows to differ.
      expect(r8.choices[0]!.token_ids).toEqual(q8.tokens);
    }
  });

  it("chat: non-stream and stream give the same text; the stream carries usage", async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "system", content: "You are Petrel." }, { role: "user", content: "Hello from the edge!" }];
    const plain = await client.chat.completions.create({ model: "petrel-demo", messages, max_tokens: 24, temperature: 0 });
    expect(plain.object).toBe("chat.completion");
    const text = plain.choices[0]!.message.content!;
    expect(text.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model: "petrel-demo", messages, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let streamed = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(streamed).toBe(text);
    expect(finish).toBe(plain.choices[0]!.finish_reason);
    expect(usage).toEqual(plain.usage);
  });

  it("a session (X-Session-Id) keeps the conversation and reuses its KV-cache", async () => {
    const session = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-petrel-local", maxRetries: 0, defaultHeaders: { "x-session-id": `e2e-${Date.now()}` } });
    await session.chat.completions.create({ model: "petrel-demo", messages: [{ role: "user", content: "Remember the word albatross." }], max_tokens: 4, temperature: 0 });
    const second = await session.chat.completions.create({ model: "petrel-demo", messages: [{ role: "user", content: "Which word?" }], max_tokens: 4, temperature: 0 });
    expect(second.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(10);
  });

  it("errors surface as the client's typed errors", async () => {
    const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-not-a-key", maxRetries: 0 });
    const auth = await wrong.models.list().catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((auth as APIError).code).toBe("invalid_api_key");

    const missing = await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as APIError).code).toBe("model_not_found");

    const n2 = await client.chat.completions.create({ model: "petrel-demo", messages: [{ role: "user", content: "x" }], n: 2 }).catch((e: unknown) => e);
    expect(n2).toBeInstanceOf(OpenAI.BadRequestError);
    expect((n2 as APIError).param).toBe("n");

    const long = await client.completions.create({ model: "llama-f32", prompt: [1, 2, 3], max_tokens: 600 }).catch((e: unknown) => e);
    expect(long).toBeInstanceOf(OpenAI.BadRequestError);
    expect((long as APIError).code).toBe("context_length_exceeded");

    // A key with 1 request per minute, made through the admin API of .dev.vars' admin key.
    const made = await fetch(`${base}/v1/admin/keys`, {
      method: "POST",
      headers: { authorization: "Bearer sk-petrel-admin-local", "content-type": "application/json" },
      body: JSON.stringify({ tenant: "e2e", rpm: 1 }),
    });
    const { key } = (await made.json()) as { key: string };
    const limited = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
    await limited.completions.create({ model: "llama-f32", prompt: [1], max_tokens: 1 });
    const limitedErr = await limited.completions.create({ model: "llama-f32", prompt: [1], max_tokens: 1 }).catch((e: unknown) => e);
    expect(limitedErr).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limitedErr as APIError).code).toBe("rate_limit_exceeded");
    expect(Number((limitedErr as APIError).headers?.get("retry-after"))).toBeGreaterThan(0);
  });
});
