/**
 * Turning a route's events into what the client gets, for a worker that does not run them
 * through its own SSE path: the non-stream OpenAI object (collectReply + replyObject) and the
 * SSE stream (sseStream). A reply whose upstream broke after output ends, in SSE, with one event
 * carrying both `choices[0].finish_reason: null` and an `error` object (the openai clients raise
 * it), and no `[DONE]`; non-stream, it is an error response (the partial text is not a reply).
 */
import type { OpenAIErrorBody, RouteEvent, Usage } from "./types.ts";

export interface Reply {
  text: string;
  tokenIds: number[];
  finishReason: string | null;
  usage?: Usage;
  /** Set when the stream broke after output: the reply is incomplete. */
  error?: { status: number; error: OpenAIErrorBody };
}

export async function collectReply(events: AsyncIterable<RouteEvent>): Promise<Reply> {
  const reply: Reply = { text: "", tokenIds: [], finishReason: null };
  for await (const ev of events) {
    if (ev.type === "delta") {
      reply.text += ev.text;
      if (ev.tokenIds) reply.tokenIds.push(...ev.tokenIds);
    } else if (ev.type === "end") {
      reply.finishReason = ev.finishReason;
      if (ev.usage) reply.usage = ev.usage;
    } else reply.error = { status: ev.status, error: ev.error };
  }
  return reply;
}

export interface ReplyMeta {
  kind: "chat" | "completion";
  id: string;
  model: string;
  created: number;
}

/** The OpenAI chat.completion / text_completion object of a finished reply. */
export function replyObject(meta: ReplyMeta, reply: Reply) {
  const choice =
    meta.kind === "chat"
      ? { index: 0, message: { role: "assistant", content: reply.text, refusal: null }, logprobs: null, finish_reason: reply.finishReason }
      : { index: 0, text: reply.text, logprobs: null, finish_reason: reply.finishReason };
  return {
    id: meta.id,
    object: meta.kind === "chat" ? "chat.completion" : "text_completion",
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: [choice],
    ...(reply.usage && { usage: reply.usage }),
  };
}

/** OpenAI SSE chunks for the events (`include_usage`: a final usage chunk when the upstream reported usage). */
export function sseStream(meta: ReplyMeta, events: AsyncIterable<RouteEvent>, opts: { includeUsage?: boolean } = {}): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const chat = meta.kind === "chat";
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const base = () => ({ id: meta.id, object, created: meta.created, model: meta.model, system_fingerprint: null });
  const choice = (text: string | null, finish: string | null) =>
    chat ? { index: 0, delta: text === null ? {} : { content: text }, logprobs: null, finish_reason: finish } : { index: 0, text: text ?? "", logprobs: null, finish_reason: finish };
  const it = events[Symbol.asyncIterator]();
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const send = (data: unknown) => controller.enqueue(encoder.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
      if (!started) {
        started = true;
        if (chat) send({ ...base(), choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] });
      }
      const r = await it.next();
      if (r.done) {
        controller.close();
        return;
      }
      const ev = r.value;
      if (ev.type === "delta") {
        send({ ...base(), choices: [choice(ev.text, null)] });
      } else if (ev.type === "end") {
        send({ ...base(), choices: [choice(null, ev.finishReason)] });
        if (opts.includeUsage && ev.usage) send({ ...base(), choices: [], usage: ev.usage });
        send("[DONE]");
        controller.close();
      } else {
        send({ ...base(), choices: [choice(null, null)], error: ev.error.error });
        controller.close();
      }
    },
    async cancel() {
      await it.return?.(undefined);
    },
  });
}
