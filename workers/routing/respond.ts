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
        // Token ids come only when the client asked (return_token_ids, vLLM's extension): passed on as the upstream sent them.
        send({ ...base(), choices: [{ ...choice(ev.text, null), ...(ev.tokenIds && { token_ids: ev.tokenIds }) }] });
      } else if (ev.type === "end") {
        send({ ...base(), choices: [choice(null, ev.finishReason)] });
        if (opts.includeUsage && ev.usage) send({ ...base(), choices: [], usage: ev.usage });
        send("[DONE]");
        controller.close();
        await it.return?.(undefined); // let the producers' cleanup run (upstream connection, bookkeeping)
      } else {
        send({ ...base(), choices: [choice(null, null)], error: ev.error.error });
        controller.close();
        await it.return?.(undefined);
      }
    },
    async cancel() {
      await it.return?.(undefined);
    },
  });
}

/**
 * The events unchanged, and `onEnd` called exactly once when the reply ends, breaks or is
 * abandoned: with the upstream's usage when it reported one, and the tokens seen (token ids, or
 * one per text delta when the upstream sends no ids).
 */
export async function* metered(events: AsyncIterable<RouteEvent>, onEnd: (usage: Usage | undefined, seen: number) => Promise<void>): AsyncGenerator<RouteEvent, void, undefined> {
  let seen = 0;
  let ended = false;
  const end = async (usage: Usage | undefined) => {
    if (ended) return;
    ended = true;
    await onEnd(usage, seen);
  };
  try {
    for await (const ev of events) {
      if (ev.type === "delta") seen += ev.tokenIds?.length ?? 1;
      else await end(ev.type === "end" ? ev.usage : undefined);
      yield ev;
    }
  } finally {
    await end(undefined);
  }
}

export interface ReplyOptions {
  stream: boolean;
  includeUsage: boolean;
  /** Completions: the reply's token ids as `choices[].token_ids` (vLLM's extension). */
  returnTokenIds: boolean;
  headers: Record<string, string>;
}

/** The client's response: SSE, or the finished OpenAI object (an error response when the upstream broke). */
export async function replyResponse(meta: ReplyMeta, events: AsyncIterable<RouteEvent>, opts: ReplyOptions): Promise<Response> {
  if (opts.stream) {
    return new Response(sseStream(meta, events, { includeUsage: opts.includeUsage }), {
      headers: { ...opts.headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    });
  }
  const reply = await collectReply(events);
  if (reply.error) return Response.json(reply.error.error, { status: reply.error.status, headers: opts.headers });
  const object = replyObject(meta, reply);
  if (opts.returnTokenIds && meta.kind === "completion") {
    return Response.json({ ...object, choices: object.choices.map((ch) => ({ ...ch, token_ids: reply.tokenIds })) }, { headers: opts.headers });
  }
  return Response.json(object, { headers: opts.headers });
}
