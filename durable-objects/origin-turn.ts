/**
 * A session turn of a routed model, inside its SessionDO. The object keeps the conversation as
 * it does for the edge (same tables, same merge of "whole history or only the new message", the
 * same busy rule) and sends the route's targets what they need: the whole conversation, since an
 * origin keeps no state (prefix reuse is its business). The reply takes the routed path of the
 * worker (router → usage → output guard → SSE or JSON), with one more step: each delta is
 * written to SQLite before it is sent, and a reply that breaks or is abandoned stays stored as
 * sent, `interrupted`. A turn no target could serve leaves no trace in the history.
 */
import { applyPolicySystemPrompt, type ChatMessage as PolicyMessage } from "../kernels/moderation/index.ts";
import type { Env } from "../workers/env.ts";
import { modelNotFound } from "../workers/errors.ts";
import { GuardedOutput, guardRouteEvents } from "../workers/moderation/index.ts";
import { ClientAbortError, isolateHealth, metered, OriginRouter, replyResponse, routeHeader, routeTableOf, type RouteEvent } from "../workers/routing/index.ts";
import { contentText, type ChatRequest, type CompletionRequest } from "../workers/schemas.ts";
import { edgeHandler } from "./origin-edge.ts";
import { routedUsage } from "./origin-usage.ts";
import type { RoutedTurnInput } from "./protocol.ts";

interface Msg {
  role: string;
  content: string;
  name?: string;
}

/** What origin-turn needs of the SessionDO (its storage and its turn bookkeeping). */
export interface SessionHost {
  readonly envForTurn: Env;
  mergeConversation(incoming: Msg[], input: { requestId: string }): { conversation: Msg[]; store: () => void };
  insert(m: { role: string; content: string | null; name?: string; token_ids?: number[]; status: string; model?: string; request_id?: string }): number;
  updateReply(seq: number, content: string, tokenIds: number[], status: string, finish: string | null): void;
  transaction<T>(fn: () => T): T;
  endTurn(ephemeral: boolean): void;
  logTurn(requestId: string, msg: string, fields: Record<string, unknown>): void;
}

/** The upstream body (whole conversation) and how to store the turn's input. */
function prepare(host: SessionHost, input: RoutedTurnInput): { body: Record<string, unknown>; store: () => void } {
  const request = { model: input.body.model, request_id: input.requestId };
  if (input.kind === "completion") {
    const b = input.body as CompletionRequest;
    const raw = Array.isArray(b.prompt) && b.prompt.length === 1 && (typeof b.prompt[0] === "string" || Array.isArray(b.prompt[0])) ? b.prompt[0]! : b.prompt;
    const store = () => void host.insert({ role: "prompt", status: "complete", ...request, ...(typeof raw === "string" ? { content: raw } : { content: null, token_ids: raw as number[] }) });
    return { body: { ...b }, store };
  }
  const b = input.body as ChatRequest;
  const incoming: Msg[] = b.messages.map((m) => ({ role: m.role, content: contentText(m.content), ...("name" in m && m.name !== undefined && { name: m.name }) }));
  const { conversation, store } = host.mergeConversation(incoming, input);
  // The tenant's pinned system prompt goes upstream, never into the stored history.
  const policy = input.moderation;
  const messages = policy?.systemPrompt ? applyPolicySystemPrompt(policy, conversation as PolicyMessage[]) : conversation;
  return { body: { ...b, messages }, store };
}

/**
 * Runs the turn; the caller marked the session busy, and this ends the turn (host.endTurn) once
 * the reply is over, whichever way it ends.
 */
export async function runOriginTurn(host: SessionHost, input: RoutedTurnInput, signal: AbortSignal): Promise<Response> {
  let handedOff = false;
  try {
    const env = host.envForTurn;
    const model = input.body.model;
    const log = (msg: string, fields: Record<string, unknown>) => host.logTurn(input.requestId, msg, fields);
    const routes = routeTableOf(env.ORIGIN_ROUTES, env as unknown as Record<string, unknown>, (error) => log("ORIGIN_ROUTES ignored", { error }));
    if (!routes?.get(model)) throw modelNotFound(model);
    const { body, store } = prepare(host, input);
    const stream = body.stream === true;
    const guard = await GuardedOutput.create(env, input.moderation, { stream, tenant: input.tenant, requestId: input.requestId });
    const router = new OriginRouter({ routes, health: isolateHealth, edge: edgeHandler(env, input) });
    let result;
    try {
      result = await router.route(model, { kind: input.kind, body, requestId: input.requestId }, signal);
    } catch (e) {
      if (e instanceof ClientAbortError) return new Response(null, { status: 499 });
      throw e;
    }
    if (!result) throw modelNotFound(model);
    const headers = { "x-petrel-route": routeHeader(result.route) };
    log("routed turn", { session: input.session, route: headers["x-petrel-route"], ok: result.ok });
    if (!result.ok) return Response.json(result.error, { status: result.status, headers: { ...headers, ...result.headers } });

    const seq = host.transaction(() => {
      store();
      return host.insert({ role: input.kind === "chat" ? "assistant" : "completion", content: "", token_ids: [], status: "streaming", model, request_id: input.requestId });
    });
    const charged = metered(result.events, routedUsage(env, input, model, result.route.kind));
    const events = persisted(host, seq, guard ? guardRouteEvents(charged, guard) : charged, () => host.endTurn(false));
    handedOff = true;
    const meta = { kind: input.kind, id: `${input.kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`, model, created: Math.floor(Date.now() / 1000) } as const;
    return await replyResponse(meta, events, { stream, includeUsage: input.body.stream_options?.include_usage === true, returnTokenIds: input.body.return_token_ids === true, headers });
  } finally {
    if (!handedOff) host.endTurn(false);
  }
}

/**
 * The reply's events, each delta stored before it goes on (the output gate holds the bytes until
 * the write is durable); its end marks the reply complete, a break or an abandoned stream marks
 * it interrupted. `done` runs once, as soon as the reply's fate is known.
 */
async function* persisted(host: SessionHost, seq: number, events: AsyncIterable<RouteEvent>, done: () => void): AsyncGenerator<RouteEvent, void, undefined> {
  let text = "";
  const tokens: number[] = [];
  let over = false;
  const finish = (status: "complete" | "interrupted", reason: string | null) => {
    if (over) return;
    over = true;
    host.updateReply(seq, text, tokens, status, reason);
    done();
  };
  try {
    for await (const ev of events) {
      if (ev.type === "delta") {
        text += ev.text;
        if (ev.tokenIds) tokens.push(...ev.tokenIds);
        host.updateReply(seq, text, tokens, "streaming", null);
      } else if (ev.type === "end") finish("complete", ev.finishReason);
      else finish("interrupted", null);
      yield ev;
    }
  } finally {
    finish("interrupted", null);
  }
}
