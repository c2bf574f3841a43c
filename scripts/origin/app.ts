/**
 * The Node origin's HTTP API (a Hono app, served by node-http.ts): OpenAI-compatible
 * `/v1/chat/completions`, `/v1/completions` (text or token-id prompts), `/v1/models`, plus
 * `/health` and `/metrics`. One model is loaded and every `model` id gets it, as llama.cpp's
 * server does. Every failure is an OpenAI error object; nothing a client sends crashes it.
 */
import { Hono, type Context } from "hono";
import type { z } from "zod";
import { ChatTemplateError, renderChat } from "../../kernels/chat/index.ts";
import type { Engine, RequestHandle } from "../../kernels/engine/engine.ts";
import type { MeteredBackend } from "../../kernels/engine/metered-backend.ts";
import { EngineClosedError, EngineOverloadedError, EngineRequestError, type GenerationResult } from "../../kernels/engine/types.ts";
import type { SamplingParams } from "../../kernels/sampling/index.ts";
import type { Tokenizer } from "../../kernels/tokenizer/index.ts";
import { chatSchema, completionSchema, contentText, describeIssue, type ChatBody, type CompletionBody } from "./schemas.ts";

export interface OriginDeps {
  engine: Engine;
  tokenizer: Tokenizer;
  /** The id /v1/models lists and responses name. */
  modelId: string;
  chatTemplate: string | undefined;
  /** Context size of one request (prompt + max_tokens). */
  nCtx: number;
  /** When set, /v1/* and /metrics need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The backend wrapper whose weight traffic /metrics reports. */
  metered?: MeteredBackend;
  info: Record<string, unknown>;
  log?: (msg: string, fields: Record<string, unknown>) => void;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  response(): Response {
    return Response.json(this.body(), { status: this.status, headers: this.headers });
  }
}

const badRequest = (message: string, param: string | null = null, code: string | null = "invalid_value") => new HttpError(400, message, "invalid_request_error", code, param);
export const tooLarge = (limit: number) => new HttpError(413, `Request body too large: the limit is ${limit} bytes.`, "invalid_request_error", "request_too_large").response();
export const internalError = () => new HttpError(500, "The origin had an internal error while processing the request.", "server_error", "internal_error").response();

type Kind = "chat" | "completion";

interface Counters {
  requests: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  streams: number;
  disconnects: number;
}

export function createOriginApp(deps: OriginDeps): Hono {
  const { engine, tokenizer, modelId } = deps;
  const created = Math.floor(Date.now() / 1000);
  const started = Date.now();
  const counters: Counters = { requests: {}, promptTokens: 0, completionTokens: 0, streams: 0, disconnects: 0 };
  const log = deps.log ?? (() => {});
  const app = new Hono();

  app.use("*", async (c, next) => {
    await next();
    const key = `${c.req.method} ${c.req.routePath} ${c.res.status}`;
    counters.requests[key] = (counters.requests[key] ?? 0) + 1;
    c.res.headers.set("x-petrel-batching", engine.batching ? "on" : "off");
  });

  app.onError((err, c) => {
    if (err instanceof HttpError) return err.response();
    log("unhandled error", { path: c.req.path, error: err instanceof Error ? err.stack ?? err.message : String(err) });
    return internalError();
  });
  app.notFound((c) => new HttpError(404, `Unknown route: ${c.req.method} ${c.req.path}`, "invalid_request_error", "unknown_url").response());

  app.get("/health", (c) => c.json({ status: "ok", model: modelId, batching: engine.batching, uptime_s: Math.round((Date.now() - started) / 1000), ...deps.info }));

  // Bearer key on everything but /health.
  if (deps.apiKey !== undefined) {
    const expected = deps.apiKey;
    const guard = async (c: Context, next: () => Promise<void>) => {
      const header = c.req.header("authorization");
      if (!header) throw new HttpError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.", "invalid_request_error", "invalid_api_key");
      const m = /^Bearer\s+(.+)$/i.exec(header);
      if (!m || !sameKey(m[1]!.trim(), expected)) throw new HttpError(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
      await next();
    };
    app.use("/v1/*", guard);
    app.use("/metrics", guard);
  }

  app.get("/metrics", (c) =>
    c.json({
      model: modelId,
      engine: engine.stats(),
      weights: deps.metered?.snapshot() ?? null,
      http: { ...counters, requests: { ...counters.requests } },
    }),
  );

  const modelObject = (id: string) => ({ id, object: "model", created, owned_by: "petrel", petrel: { n_ctx: deps.nCtx, ...deps.info } });
  app.get("/v1/models", (c) => c.json({ object: "list", data: [modelObject(modelId)] }));
  app.get("/v1/models/:id{.+}", (c) => c.json(modelObject(c.req.param("id"))));

  app.post("/v1/completions", async (c) => {
    const body = await parse(c, completionSchema);
    const prompt = completionPrompt(body.prompt);
    return generation(c, "completion", body, prompt);
  });

  app.post("/v1/chat/completions", async (c) => {
    const body = await parse(c, chatSchema);
    return generation(c, "chat", body, chatPrompt(body));
  });

  function completionPrompt(p: CompletionBody["prompt"]): number[] {
    const one = Array.isArray(p) && p.length === 1 && (typeof p[0] === "string" || Array.isArray(p[0])) ? p[0]! : p;
    if (typeof one === "string") return tokenizer.encode(one, { addSpecial: true, parseSpecial: true });
    const ids = one as number[];
    const bad = ids.find((id) => id >= tokenizer.vocabSize);
    if (bad !== undefined) throw badRequest(`token id ${bad} in the prompt is outside the vocabulary (0..${tokenizer.vocabSize - 1})`, "prompt", "invalid_prompt");
    return ids;
  }

  function chatPrompt(body: ChatBody): number[] {
    const piece = (id: number | undefined) => (id === undefined ? "" : tokenizer.tokenToPiece(id, { special: true }));
    const bosToken = piece(tokenizer.bos);
    const eosToken = piece(tokenizer.eos);
    let text: string;
    try {
      text = renderChat(
        deps.chatTemplate,
        body.messages.map((m) => ({ ...m, role: m.role === "developer" ? "system" : m.role, content: contentText(m.content) })),
        { addGenerationPrompt: true, bosToken, eosToken },
      );
    } catch (e) {
      if (e instanceof ChatTemplateError) throw badRequest(`The model's chat template refused these messages: ${e.message}`, "messages", "invalid_chat");
      throw e;
    }
    // A template that writes the BOS itself must not get a second one.
    const addSpecial = !(bosToken !== "" && text.startsWith(bosToken));
    return tokenizer.encode(text, { addSpecial, parseSpecial: true });
  }

  function generation(c: Context, kind: Kind, body: ChatBody | CompletionBody, prompt: number[]): Response | Promise<Response> {
    if (prompt.length === 0) throw badRequest("the prompt is empty", kind === "chat" ? "messages" : "prompt", "invalid_prompt");
    if (prompt.length >= deps.nCtx) {
      throw badRequest(`This model's maximum context length is ${deps.nCtx} tokens, but the prompt has ${prompt.length} tokens.`, kind === "chat" ? "messages" : "prompt", "context_length_exceeded");
    }
    const requested = (kind === "chat" ? (body as ChatBody).max_completion_tokens : undefined) ?? body.max_tokens;
    const maxTokens = requested ?? deps.nCtx - prompt.length;
    const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    const sampling: SamplingParams = {
      ...(body.temperature != null && { temperature: body.temperature }),
      ...(body.top_p != null && { topP: body.top_p }),
      ...(body.top_k != null && { topK: body.top_k }),
      ...(body.min_p != null && { minP: body.min_p }),
      ...(body.seed != null && { seed: body.seed }),
      ...(body.presence_penalty != null && { presencePenalty: body.presence_penalty }),
      ...(body.frequency_penalty != null && { frequencyPenalty: body.frequency_penalty }),
      ...(body.repetition_penalty != null && { repeatPenalty: body.repetition_penalty }),
      ...(body.logit_bias != null && { logitBias: Object.fromEntries(Object.entries(body.logit_bias).map(([k, v]) => [Number(k), v])) }),
    };
    if (sampling.logitBias) {
      const bad = Object.keys(sampling.logitBias).map(Number).find((id) => id >= tokenizer.vocabSize);
      if (bad !== undefined) throw badRequest(`logit_bias names token id ${bad}, outside the vocabulary`, "logit_bias");
    }
    let handle: RequestHandle;
    try {
      handle = engine.submit({ prompt, maxTokens, sampling, stop, ignoreEos: body.ignore_eos ?? false, signal: c.req.raw.signal });
    } catch (e) {
      throw engineError(e);
    }
    counters.promptTokens += prompt.length;
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
    const meta = { id, created: Math.floor(Date.now() / 1000), model: modelId, kind, prompt, returnIds: body.return_token_ids === true };
    return body.stream ? streamResponse(handle, meta, body.stream_options?.include_usage === true) : jsonResponse(handle, meta);
  }

  interface Meta {
    id: string;
    created: number;
    model: string;
    kind: Kind;
    prompt: number[];
    returnIds: boolean;
  }

  const usage = (m: Meta, r: GenerationResult) => ({ prompt_tokens: m.prompt.length, completion_tokens: r.tokens.length, total_tokens: m.prompt.length + r.tokens.length });

  async function jsonResponse(handle: RequestHandle, m: Meta): Promise<Response> {
    let r: GenerationResult;
    try {
      r = await handle.result;
    } catch (e) {
      throw engineError(e);
    }
    counters.completionTokens += r.tokens.length;
    if (r.cancelled) counters.disconnects++;
    const ids = m.returnIds ? { token_ids: r.tokens } : {};
    const choice =
      m.kind === "chat"
        ? { index: 0, message: { role: "assistant", content: r.text, refusal: null }, logprobs: null, finish_reason: r.finish, ...ids }
        : { index: 0, text: r.text, logprobs: null, finish_reason: r.finish, ...ids };
    const body = {
      id: m.id,
      object: m.kind === "chat" ? "chat.completion" : "text_completion",
      created: m.created,
      model: m.model,
      system_fingerprint: null,
      choices: [choice],
      usage: usage(m, r),
      ...(m.returnIds && { prompt_token_ids: m.prompt }),
    };
    return Response.json(body, { headers: { "x-petrel-batch": String(r.maxBatch), "x-petrel-queued-steps": String(r.queuedSteps) } });
  }

  function streamResponse(handle: RequestHandle, m: Meta, includeUsage: boolean): Response {
    counters.streams++;
    const encoder = new TextEncoder();
    const chat = m.kind === "chat";
    const object = chat ? "chat.completion.chunk" : "text_completion";
    const usageField = includeUsage ? { usage: null } : {};
    const chunk = (choice: object) => ({ id: m.id, object, created: m.created, model: m.model, system_fingerprint: null, choices: [choice], ...usageField });
    let open = true;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const send = (data: object | string) => {
      if (!open) return;
      try {
        controller.enqueue(encoder.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
      } catch {
        open = false;
      }
    };
    const pump = async () => {
      if (chat) send(chunk({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null, ...(m.returnIds && { token_ids: [] }) }));
      try {
        for await (const ev of handle) {
          if (ev.type === "delta") {
            if (ev.text === "" && !m.returnIds) continue;
            const ids = m.returnIds ? { token_ids: ev.tokens } : {};
            send(chunk(chat ? { index: 0, delta: { content: ev.text }, logprobs: null, finish_reason: null, ...ids } : { index: 0, text: ev.text, logprobs: null, finish_reason: null, ...ids }));
            continue;
          }
          const r = ev.result;
          counters.completionTokens += r.tokens.length;
          if (r.cancelled) {
            counters.disconnects++;
            break;
          }
          send(chunk(chat ? { index: 0, delta: {}, logprobs: null, finish_reason: r.finish } : { index: 0, text: "", logprobs: null, finish_reason: r.finish }));
          if (includeUsage) send({ id: m.id, object, created: m.created, model: m.model, system_fingerprint: null, choices: [], usage: usage(m, r), ...(m.returnIds && { prompt_token_ids: m.prompt }) });
          send("[DONE]");
        }
      } catch (e) {
        const err = engineError(e);
        send(err.body());
      } finally {
        if (open) {
          open = false;
          try {
            controller.close();
          } catch {
            // the reader is gone
          }
        }
      }
    };
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
        void pump();
      },
      cancel: () => {
        open = false;
        handle.cancel();
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no", connection: "keep-alive" },
    });
  }

  function engineError(e: unknown): HttpError {
    if (e instanceof HttpError) return e;
    if (e instanceof EngineRequestError) return badRequest(e.message, e.param, e.code);
    if (e instanceof EngineOverloadedError) {
      return new HttpError(429, `The origin is overloaded: ${e.queued} requests are waiting. Retry after ${e.retryAfterSeconds} s.`, "rate_limit_error", "overloaded", null, {
        "retry-after": String(e.retryAfterSeconds),
      });
    }
    if (e instanceof EngineClosedError) return new HttpError(503, "The origin is shutting down.", "server_error", "shutting_down");
    log("generation failed", { error: e instanceof Error ? e.stack ?? e.message : String(e) });
    return new HttpError(500, "Generation failed on the origin.", "server_error", "internal_error");
  }

  return app;
}

async function parse<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request.", "invalid_request_error", "invalid_json");
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const { message, param } = describeIssue(issue);
    throw badRequest(message, param, issue.code === "invalid_type" ? "invalid_type" : "invalid_value");
  }
  return r.data;
}

/** Constant-time comparison of two keys. */
function sameKey(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i % x.length] ?? 0) ^ (y[i % y.length] ?? 0);
  return diff === 0;
}
