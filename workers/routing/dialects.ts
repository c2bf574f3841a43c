/**
 * The two wire dialects an origin may speak, each as: the upstream request for a RouteRequest,
 * and a parser from the response's lines to deltas and one end.
 *
 * - openai: `POST {baseUrl}/chat/completions` or `/completions` with `stream: true` and
 *   `stream_options.include_usage`; the reply is SSE (`data: {chunk}` … `data: [DONE]`).
 * - ollama: `POST {baseUrl}/api/chat` (messages) or `/api/generate` (a text prompt, `raw: true`
 *   so Ollama applies no template); the reply is NDJSON, one object per line, the last with
 *   `done: true`, `done_reason` and the token counts (Ollama's API documentation, docs/api.md).
 */
import type { OriginTarget, RouteRequest, Usage } from "./types.ts";

export type ParsedEvent = { type: "delta"; text: string; tokenIds?: number[] } | { type: "end"; finishReason: string | null; usage?: Usage };

/** The upstream reported an error inside its stream, or its stream is malformed or cut short. */
export class UpstreamStreamError extends Error {
  override name = "UpstreamStreamError";
  constructor(
    message: string,
    readonly kind: "error_payload" | "malformed" | "truncated",
  ) {
    super(message);
  }
}

export interface UpstreamCall {
  url: string;
  body: Record<string, unknown>;
}

export interface DialectAdapter {
  /** The upstream request, or a reason this dialect cannot express the request. */
  request(target: OriginTarget, req: RouteRequest): UpstreamCall | { unsupported: string };
  parse(lines: AsyncIterable<string>, kind: RouteRequest["kind"]): AsyncGenerator<ParsedEvent, void, undefined>;
}

/** Fields the worker accepts that no upstream knows. */
const PETREL_ONLY = ["session", "truncation", "stream", "stream_options", "model"];

// ---------------------------------------------------------------------------------------------
// OpenAI

const openai: DialectAdapter = {
  request(target, req) {
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(req.body)) if (!PETREL_ONLY.includes(k) && v !== undefined && v !== null) body[k] = v;
    body.model = target.model;
    body.stream = true;
    body.stream_options = { include_usage: true };
    return { url: `${target.baseUrl}/${req.kind === "chat" ? "chat/completions" : "completions"}`, body };
  },

  async *parse(lines, kind) {
    let finishReason: string | null = null;
    let usage: Usage | undefined;
    let data: string[] = [];
    const handle = function* (payload: string): Generator<ParsedEvent, boolean> {
      if (payload === "[DONE]") {
        yield { type: "end", finishReason, ...(usage && { usage }) };
        return true;
      }
      let chunk: Record<string, unknown>;
      try {
        chunk = JSON.parse(payload) as Record<string, unknown>;
      } catch {
        throw new UpstreamStreamError(`the upstream sent a malformed SSE event: ${payload.slice(0, 200)}`, "malformed");
      }
      if (chunk.error !== undefined && chunk.error !== null) throw new UpstreamStreamError(`the upstream reported an error mid-stream: ${messageOf(chunk.error)}`, "error_payload");
      if (isUsage(chunk.usage)) usage = chunk.usage;
      const choices = Array.isArray(chunk.choices) ? (chunk.choices as Record<string, unknown>[]) : [];
      const choice = choices.find((c) => (c.index ?? 0) === 0);
      if (!choice) return false;
      const text = kind === "chat" ? (choice.delta as { content?: unknown } | undefined)?.content : choice.text;
      const ids = Array.isArray(choice.token_ids) ? (choice.token_ids as number[]) : undefined;
      if ((typeof text === "string" && text !== "") || (ids && ids.length > 0)) {
        yield { type: "delta", text: typeof text === "string" ? text : "", ...(ids && ids.length > 0 && { tokenIds: ids }) };
      }
      if (typeof choice.finish_reason === "string") finishReason = choice.finish_reason;
      return false;
    };
    for await (const line of lines) {
      if (line === "") {
        if (data.length === 0) continue;
        const payload = data.join("\n");
        data = [];
        if (yield* handle(payload)) return;
        continue;
      }
      if (line.startsWith(":")) continue; // SSE comment (keep-alive)
      if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      // other SSE fields (event:, id:, retry:) carry nothing we use
    }
    if (data.length > 0 && (yield* handle(data.join("\n")))) return;
    // No [DONE]: lenient when the reply was finished, an error when it was cut off.
    if (finishReason !== null) {
      yield { type: "end", finishReason, ...(usage && { usage }) };
      return;
    }
    throw new UpstreamStreamError("the upstream stream ended before the reply was complete", "truncated");
  },
};

// ---------------------------------------------------------------------------------------------
// Ollama (native)

const OLLAMA_OPTIONS: [string, string][] = [
  ["temperature", "temperature"],
  ["top_p", "top_p"],
  ["top_k", "top_k"],
  ["min_p", "min_p"],
  ["seed", "seed"],
  ["presence_penalty", "presence_penalty"],
  ["frequency_penalty", "frequency_penalty"],
  ["repetition_penalty", "repeat_penalty"],
];

const ollama: DialectAdapter = {
  request(target, req) {
    const b = req.body;
    const options: Record<string, unknown> = {};
    for (const [from, to] of OLLAMA_OPTIONS) if (typeof b[from] === "number") options[to] = b[from];
    const maxTokens = b.max_completion_tokens ?? b.max_tokens;
    if (typeof maxTokens === "number") options.num_predict = maxTokens;
    if (typeof b.stop === "string") options.stop = [b.stop];
    else if (Array.isArray(b.stop)) options.stop = b.stop;
    if (req.kind === "chat") {
      const messages = (Array.isArray(b.messages) ? b.messages : []).map((m: Record<string, unknown>) => ({
        role: m.role === "developer" ? "system" : m.role,
        content: textOf(m.content),
      }));
      return { url: `${target.baseUrl}/api/chat`, body: { model: target.model, messages, stream: true, options } };
    }
    let prompt = b.prompt;
    if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") prompt = prompt[0];
    if (typeof prompt !== "string") return { unsupported: "Ollama's native API takes text prompts only, not token ids" };
    return { url: `${target.baseUrl}/api/generate`, body: { model: target.model, prompt, raw: true, stream: true, options } };
  },

  async *parse(lines, kind) {
    for await (const line of lines) {
      if (line.trim() === "") continue;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new UpstreamStreamError(`the upstream sent a malformed NDJSON line: ${line.slice(0, 200)}`, "malformed");
      }
      if (obj.error !== undefined) throw new UpstreamStreamError(`the upstream reported an error mid-stream: ${messageOf(obj.error)}`, "error_payload");
      const text = kind === "chat" ? (obj.message as { content?: unknown } | undefined)?.content : obj.response;
      if (typeof text === "string" && text !== "") yield { type: "delta", text };
      if (obj.done === true) {
        const p = typeof obj.prompt_eval_count === "number" ? obj.prompt_eval_count : undefined;
        const c = typeof obj.eval_count === "number" ? obj.eval_count : undefined;
        const usage = p !== undefined && c !== undefined ? { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } : undefined;
        yield { type: "end", finishReason: obj.done_reason === "length" ? "length" : "stop", ...(usage && { usage }) };
        return;
      }
    }
    throw new UpstreamStreamError("the upstream stream ended before the reply was complete", "truncated");
  },
};

export const DIALECTS: Record<OriginTarget["dialect"], DialectAdapter> = { openai, ollama };

// ---------------------------------------------------------------------------------------------

function isUsage(v: unknown): v is Usage {
  return typeof v === "object" && v !== null && typeof (v as Usage).prompt_tokens === "number" && typeof (v as Usage).completion_tokens === "number";
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "object" && p !== null && typeof (p as { text?: unknown }).text === "string" ? (p as { text: string }).text : "")).join("");
  return "";
}

/** The message of an error as OpenAI ({error:{message}}), Ollama ({error:"…"}), vLLM ({message}) or FastAPI ({detail}) write it. */
export function messageOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    if (o.error !== undefined) return messageOf(o.error);
    if (typeof o.message === "string") return o.message;
    if (typeof o.detail === "string") return o.detail;
  }
  return JSON.stringify(v)?.slice(0, 300) ?? String(v);
}

/** Lines of a byte stream (LF or CRLF); cancelling the iteration cancels the stream. */
export async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        yield line.endsWith("\r") ? line.slice(0, -1) : line;
      }
    }
    buffer += decoder.decode();
    if (buffer !== "") yield buffer;
  } finally {
    reader.cancel().catch(() => {});
  }
}
