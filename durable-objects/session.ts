/**
 * SessionDO: one per (tenant, session id). It keeps the conversation in its SQLite storage and
 * the KV-cache of that conversation in memory, and serialises its own turns: a second request
 * while a reply is being generated gets 409 `session_busy` at once.
 *
 * What the client was sent is never lost: the new user message is stored before generation
 * starts, the reply is written to SQLite before each piece of it is sent (the output gate holds
 * the bytes until the write is durable), and a reply cut off by a restart or a disconnect stays
 * stored as sent, marked `interrupted`. The KV-cache is only a cache: after an eviction or a
 * restart it is rebuilt by prefilling the stored conversation, and the answer is the same.
 */
import { DurableObject } from "cloudflare:workers";
import { ChatTemplateError, renderChat } from "../kernels/chat/index.ts";
import type { SamplingParams } from "../kernels/sampling/index.ts";
import { numberVar, type Env } from "../workers/env.ts";
import { ApiError, badRequest, notFound, sessionBusy } from "../workers/errors.ts";
import { contentText, type ChatMessage, type ChatRequest, type CompletionRequest } from "../workers/schemas.ts";
import { createServingBackend, servingBackend } from "./backends.ts";
import { MB } from "./memory.ts";
import { getModel, isolateStats, SessionCache, type LoadedModel } from "./executor.ts";
import { runGeneration, type GenerationResult } from "./generation.ts";
import { forgetInShards, getPipelineModel, isSharded } from "./pipeline.ts";
import type { RoutedTurnInput, TurnInput } from "./protocol.ts";
import { runOriginTurn } from "./origin-turn.ts";
import { checkTokenPrompt, finishGuardedTurn, turnOutputGuard, withPinnedPrompt } from "../workers/moderation/turn.ts";
import type { GuardedOutput } from "../workers/moderation/output.ts";

/** Roles of chat messages; `prompt`/`completion` rows come from /v1/completions turns. */
const CHAT_ROLES = ["system", "developer", "user", "assistant", "tool"] as const;

interface Row {
  seq: number;
  role: string;
  content: string | null;
  name: string | null;
  token_ids: string | null;
  status: string;
  finish_reason: string | null;
  model: string | null;
  request_id: string | null;
  created: number;
}

interface Msg {
  role: string;
  content: string;
  name?: string;
}

export class SessionDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly cache: SessionCache;
  private busy = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.cache = new SessionCache(ctx.id.toString());
    this.createTables();
    // A fresh instance generates nothing yet: a reply still marked streaming was cut by a restart.
    this.sql.exec(`UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'`);
  }

  private createTables(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT NOT NULL, content TEXT, name TEXT, token_ids TEXT,
      status TEXT NOT NULL, finish_reason TEXT, model TEXT, request_id TEXT, created INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  }

  private log(requestId: string, msg: string, fields: Record<string, unknown> = {}): void {
    console.log(JSON.stringify({ level: "info", component: "session", request_id: requestId, object: this.ctx.id.toString().slice(0, 16), msg, ...fields }));
  }

  /** For tests and benchmarks (runInDurableObject): what this object and its isolate hold. */
  stats() {
    return { busy: this.busy, cachedTokens: this.cache.tokens.length, hasCache: this.cache.kv !== undefined, isolate: isolateStats() };
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const requestId = request.headers.get("x-request-id") ?? "unknown";
    try {
      if (url.pathname === "/turn" && request.method === "POST") {
        const input = (await request.json()) as TurnInput | RoutedTurnInput;
        return "routed" in input ? await this.routedTurn(input, request.signal) : await this.turn(input, request.signal);
      }
      if (url.pathname === "/history" && request.method === "GET") return this.history(url.searchParams.get("session") ?? "");
      if (url.pathname === "/history" && request.method === "DELETE") return this.forget(url.searchParams.get("session") ?? "", requestId);
      return notFound(`Unknown session route ${request.method} ${url.pathname}`).toResponse();
    } catch (e) {
      if (e instanceof ApiError) return e.toResponse();
      console.error(JSON.stringify({ level: "error", component: "session", request_id: requestId, msg: "turn failed", error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }));
      return new ApiError(500, `The session failed while processing your request (request id ${requestId}).`, "server_error", "internal_error").toResponse();
    }
  }

  // ---- history ----

  private rows(): Row[] {
    return this.sql.exec<Row & Record<string, SqlStorageValue>>(`SELECT * FROM messages ORDER BY seq`).toArray();
  }

  private history(session: string): Response {
    const rows = this.rows();
    if (rows.length === 0) return notFound(`No session '${session}'.`, null, "session_not_found").toResponse();
    return Response.json({
      object: "session",
      id: session,
      messages: rows.map((r) => ({
        role: r.role,
        content: r.content,
        ...(r.name !== null && { name: r.name }),
        status: r.status,
        ...(r.finish_reason !== null && { finish_reason: r.finish_reason }),
        ...(r.token_ids !== null && { token_ids: JSON.parse(r.token_ids) as number[] }),
        ...(r.model !== null && { model: r.model }),
        ...(r.request_id !== null && { request_id: r.request_id }),
        created: r.created,
      })),
    });
  }

  private async forget(session: string, requestId: string): Promise<Response> {
    if (this.busy) return sessionBusy(session).toResponse();
    const rows = this.rows();
    const existed = rows.length > 0;
    const heldHere = this.cache.kv !== undefined;
    this.cache.release();
    // After a restart this object holds no pipeline cache: the shards are told from the history.
    if (!heldHere) await forgetInShards(this.env, [...new Set(rows.flatMap((r) => (r.model ? [r.model] : [])))], this.ctx.id.toString());
    await this.ctx.storage.deleteAll();
    this.createTables();
    this.log(requestId, "session deleted", { existed });
    if (!existed) return notFound(`No session '${session}'.`, null, "session_not_found").toResponse();
    return Response.json({ object: "session.deleted", id: session, deleted: true });
  }

  // ---- turns ----

  private async turn(input: TurnInput, signal: AbortSignal): Promise<Response> {
    const label = input.session ?? "(ephemeral)";
    if (this.busy) {
      this.log(input.requestId, "refused: session busy");
      return sessionBusy(label).toResponse();
    }
    this.busy = true;
    const started = Date.now();
    let handedOff = false;
    try {
      const budgetBytes = numberVar(this.env.MEMORY_BUDGET_MB, 112) * MB;
      const prefillChunk = Math.floor(numberVar(this.env.PREFILL_CHUNK, 64));
      const backend = servingBackend(this.env.BACKEND);
      const log = (msg: string, extra?: Record<string, unknown>) => this.log(input.requestId, msg, extra);
      // A sharded model runs as a pipeline of ShardDOs; any other in this isolate.
      const loaded = isSharded(input.manifest)
        ? await getPipelineModel(this.env, input.manifest, backend, log)
        : await getModel(this.env.MODELS, input.manifest, { budgetBytes, prefillChunk, backend, createBackend: () => createServingBackend(backend) }, log);
      const plan = this.prepare(input, loaded);
      await checkTokenPrompt(this.env, input, (ids) => loaded.tokenizer.decode(ids));
      const guard = await turnOutputGuard(this.env, input, plan.stream, loaded.tokenizer);
      this.cache.acquire(loaded, budgetBytes);
      plan.store();
      this.log(input.requestId, "turn", { kind: input.kind, session: label, prompt_tokens: plan.prompt.length, max_tokens: plan.maxTokens, stream: plan.stream });
      const run = new TurnRun(this, input, loaded, plan, prefillChunk, started, guard);
      signal.addEventListener("abort", () => {
        this.log(input.requestId, "client disconnected");
        run.cancel();
      });
      handedOff = true;
      return plan.stream ? await run.streamResponse() : await run.jsonResponse();
    } finally {
      if (!handedOff) this.endTurn(input.session === null);
    }
  }

  /** Called once a turn's loop is over (or never started). */
  endTurn(ephemeral: boolean): void {
    this.busy = false;
    if (ephemeral) {
      // Nobody can name this object again: free its cache and leave no storage behind.
      this.cache.release();
      void this.ctx.storage.deleteAll();
    } else this.cache.idle();
  }

  get envForTurn(): Env {
    return this.env;
  }

  get sessionCache(): SessionCache {
    return this.cache;
  }

  /**
   * Tokenizes the request (rendering the conversation for chat) and checks the context window;
   * nothing is stored until the returned plan's `store()`, so a refused turn leaves no trace.
   */
  private prepare(input: TurnInput, loaded: LoadedModel): TurnPlan {
    const { tokenizer, model } = loaded;
    const nCtx = input.manifest.n_ctx;
    const body = input.body;
    const persist = input.session !== null;
    const requested = (body as ChatRequest).max_completion_tokens ?? body.max_tokens ?? undefined;

    const sampling = samplingParams(body, model.config.nVocab);
    const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    const base = { sampling, stop, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, returnTokenIds: body.return_token_ids === true, ignoreEos: body.ignore_eos === true };

    const fitCheck = (promptLength: number, what: string, param: string) => {
      const maxTokens = requested ?? nCtx - promptLength;
      if (promptLength + maxTokens > nCtx || maxTokens < 1) {
        throw new ApiError(400,
          `This model's maximum context length is ${nCtx} tokens. However, you requested ${promptLength + (requested ?? 1)} tokens ` +
          `(${promptLength} in the ${what}, ${requested ?? 1} in the completion). Please reduce the length of the ${what} or completion` +
          (what === "messages" ? `, or set truncation: "auto" to drop the oldest turns.` : "."),
          "invalid_request_error", "context_length_exceeded", param);
      }
      return maxTokens;
    };

    if (input.kind === "completion") {
      const b = body as CompletionRequest;
      const raw = Array.isArray(b.prompt) && b.prompt.length === 1 && (typeof b.prompt[0] === "string" || Array.isArray(b.prompt[0])) ? b.prompt[0]! : b.prompt;
      let prompt: number[];
      let promptText: string | null;
      if (typeof raw === "string") {
        prompt = tokenizer.encode(raw, { addSpecial: true, parseSpecial: true });
        promptText = raw;
        if (prompt.length === 0) throw badRequest("The prompt is empty.", "prompt");
      } else {
        prompt = raw as number[];
        promptText = null;
        const bad = prompt.find((id) => id >= model.config.nVocab);
        if (bad !== undefined) throw badRequest(`Token id ${bad} is outside the vocabulary of '${input.manifest.id}' (0..${model.config.nVocab - 1}).`, "prompt", "invalid_value");
      }
      const maxTokens = fitCheck(prompt.length, "prompt", "prompt");
      const store = () => {
        if (persist) this.insert({ role: "prompt", content: promptText, token_ids: prompt, status: "complete", model: input.manifest.id, request_id: input.requestId });
      };
      return { ...base, prompt, maxTokens, replyRole: "completion", store };
    }

    const b = body as ChatRequest;
    const incoming: Msg[] = b.messages.map((m: ChatMessage) => ({
      role: m.role,
      content: contentText(m.content),
      ...("name" in m && m.name !== undefined && { name: m.name }),
    }));
    let conversation: Msg[] = incoming;
    let storeMessages = () => {};
    if (persist) ({ conversation, store: storeMessages } = this.mergeConversation(incoming, input));

    // Render, tokenize, fit: "auto" truncation drops the oldest turns but keeps system prompts
    // and the last message.
    let kept = conversation;
    for (;;) {
      const prompt = this.tokenizeChat(loaded, withPinnedPrompt(input, kept));
      const maxTokens = requested ?? nCtx - prompt.length;
      if (prompt.length + maxTokens <= nCtx && maxTokens >= 1) {
        const store = () => {
          if (!persist) return;
          this.ctx.storage.transactionSync(() => {
            storeMessages();
            this.insert({ role: "assistant", content: "", token_ids: [], status: "streaming", model: input.manifest.id, request_id: input.requestId });
          });
        };
        return { ...base, prompt, maxTokens, replyRole: "assistant", truncatedMessages: conversation.length - kept.length, store };
      }
      const drop = b.truncation === "auto" ? kept.findIndex((m, i) => m.role !== "system" && m.role !== "developer" && i < kept.length - 1) : -1;
      if (drop < 0) {
        fitCheck(prompt.length, "messages", "messages");
        throw new ApiError(400, `The conversation does not fit in the context window of ${nCtx} tokens.`, "invalid_request_error", "context_length_exceeded", "messages");
      }
      kept = kept.filter((_, i) => i !== drop);
    }
  }

  /**
   * Reconciles the request's messages with the stored conversation: the conversation to render,
   * and how to store it (called once the turn is known to fit, before generation). Messages that begin with the stored ones, or that hold a system, developer or
   * assistant message, are the whole conversation (OpenAI-style resend; an edit cuts the stored
   * history at the first difference). Otherwise (only new user/tool messages) they are appended.
   */
  mergeConversation(incoming: Msg[], input: Pick<TurnInput, "requestId">): { conversation: Msg[]; store: () => void } {
    const stored = this.rows().filter((r) => (CHAT_ROLES as readonly string[]).includes(r.role));
    const same = (r: Row, m: Msg) => r.role === m.role && (r.content ?? "") === m.content && (r.name ?? undefined) === m.name;
    let shared = 0;
    while (shared < stored.length && shared < incoming.length && same(stored[shared]!, incoming[shared]!)) shared++;
    const wholeConversation = shared === stored.length || incoming.some((m) => m.role === "system" || m.role === "developer" || m.role === "assistant");
    const store = () => {
      if (wholeConversation) {
        const cut = stored[shared];
        if (cut) this.sql.exec(`DELETE FROM messages WHERE seq >= ?`, cut.seq);
        for (const m of incoming.slice(shared)) this.insert({ role: m.role, content: m.content, name: m.name, status: "complete", request_id: input.requestId });
      } else {
        for (const m of incoming) this.insert({ role: m.role, content: m.content, name: m.name, status: "complete", request_id: input.requestId });
      }
    };
    if (wholeConversation) return { conversation: incoming, store };
    return { conversation: [...stored.map((r) => ({ role: r.role, content: r.content ?? "", ...(r.name !== null && { name: r.name }) })), ...incoming], store };
  }

  private tokenizeChat(loaded: LoadedModel, messages: Msg[]): number[] {
    const { tokenizer } = loaded;
    const bos = tokenizer.bos;
    const eos = tokenizer.eos;
    const bosToken = bos === undefined ? "" : tokenizer.tokenToPiece(bos, { special: true });
    const eosToken = eos === undefined ? "" : tokenizer.tokenToPiece(eos, { special: true });
    let text: string;
    try {
      text = renderChat(loaded.chatTemplate, messages.map((m) => ({ ...m, role: m.role === "developer" ? "system" : m.role })), {
        addGenerationPrompt: true,
        bosToken,
        eosToken,
      });
    } catch (e) {
      if (e instanceof ChatTemplateError) throw badRequest(`The model's chat template refused these messages: ${e.message}`, "messages", "invalid_chat");
      throw e;
    }
    // A template that writes the BOS itself must not get a second one.
    const addSpecial = !(bosToken !== "" && text.startsWith(bosToken));
    return tokenizer.encode(text, { addSpecial, parseSpecial: true });
  }

  insert(m: { role: string; content: string | null; name?: string; token_ids?: number[]; status: string; model?: string; request_id?: string }): number {
    const row = this.sql.exec<{ seq: number }>(
      `INSERT INTO messages (role, content, name, token_ids, status, model, request_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
      m.role, m.content, m.name ?? null, m.token_ids ? JSON.stringify(m.token_ids) : null, m.status, m.model ?? null, m.request_id ?? null, Math.floor(Date.now() / 1000),
    ).one();
    return row.seq;
  }

  /** The reply row being generated (the last row, status streaming). */
  replySeq(): number | undefined {
    const r = this.sql.exec<{ seq: number }>(`SELECT seq FROM messages WHERE status = 'streaming' ORDER BY seq DESC LIMIT 1`).toArray()[0];
    return r?.seq;
  }

  updateReply(seq: number, content: string, tokenIds: number[], status: string, finish: string | null): void {
    this.sql.exec(`UPDATE messages SET content = ?, token_ids = ?, status = ?, finish_reason = ? WHERE seq = ?`, content, JSON.stringify(tokenIds), status, finish, seq);
  }

  /** A session turn of a model routed to origins (durable-objects/origin-turn.ts): same history, same busy rule. */
  private routedTurn(input: RoutedTurnInput, signal: AbortSignal): Promise<Response> {
    if (this.busy) return Promise.resolve(sessionBusy(input.session).toResponse());
    this.busy = true;
    return runOriginTurn(this, input, signal); // it ends the turn itself
  }

  transaction<T>(fn: () => T): T {
    return this.ctx.storage.transactionSync(fn);
  }

  logTurn(requestId: string, msg: string, fields: Record<string, unknown>): void {
    this.log(requestId, msg, fields);
  }
}

interface TurnPlan {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  returnTokenIds: boolean;
  ignoreEos: boolean;
  replyRole: "assistant" | "completion";
  truncatedMessages?: number;
  /** Stores the turn's input (and opens the reply row): called once it is known to fit. */
  store: () => void;
}

function samplingParams(body: ChatRequest | CompletionRequest, nVocab: number): SamplingParams {
  let logitBias: Record<number, number> | undefined;
  if (body.logit_bias) {
    logitBias = {};
    for (const [k, v] of Object.entries(body.logit_bias)) {
      const id = Number(k);
      if (id >= nVocab) throw badRequest(`logit_bias: token id ${id} is outside the vocabulary (0..${nVocab - 1}).`, "logit_bias", "invalid_value");
      logitBias[id] = v;
    }
  }
  return {
    temperature: body.temperature ?? 1,
    topK: body.top_k ?? undefined,
    topP: body.top_p ?? undefined,
    minP: body.min_p ?? undefined,
    repeatPenalty: body.repetition_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    ...(body.seed !== undefined && body.seed !== null && { seed: body.seed }),
    ...(logitBias && { logitBias }),
  };
}

/** One turn after its input is stored: runs the loop and shapes the OpenAI response. */
class TurnRun {
  private readonly id: string;
  /** Which backend computed the reply (OpenAI's system_fingerprint names the serving configuration). */
  private readonly fingerprint: string;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly seq: number | undefined;
  private sentText = "";
  private sentTokens: number[] = [];
  private cancelled = false;

  constructor(
    private readonly so: SessionDO,
    private readonly input: TurnInput,
    private readonly loaded: LoadedModel,
    private readonly plan: TurnPlan,
    private readonly prefillChunk: number,
    private readonly started: number,
    /** The tenant's output moderation (workers/moderation), when its policy has one. */
    private readonly guard?: GuardedOutput,
  ) {
    this.id = `${input.kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
    this.fingerprint = `petrel-${loaded.model.backend.name}`;
    this.seq = input.session === null ? undefined : plan.replyRole === "assistant" ? so.replySeq() : so.insert({ role: "completion", content: "", token_ids: [], status: "streaming", model: input.manifest.id, request_id: input.requestId });
  }

  /** The client went away: the loop stops at its next step. */
  cancel(): void {
    this.cancelled = true;
  }

  /** Stores what is about to be sent, then lets it go (the output gate waits for the write). */
  private record(text: string, tokens: number[]): void {
    this.sentText += text;
    this.sentTokens.push(...tokens);
    if (this.seq !== undefined) this.so.updateReply(this.seq, this.sentText, this.sentTokens, "streaming", null);
  }

  private async run(onText: (text: string, tokens: number[]) => void | Promise<void>, prefilled?: () => void): Promise<GenerationResult> {
    try {
      const generated = await runGeneration(this.loaded, this.so.sessionCache, {
        prompt: this.plan.prompt,
        maxTokens: this.plan.maxTokens,
        sampling: this.plan.sampling,
        stop: this.plan.stop,
        ignoreEos: this.plan.ignoreEos,
      }, {
        onText: async (text, tokens) => {
          const released = this.guard ? await this.guard.push(text, tokens) : { text, tokens };
          if (released === null || (this.guard && released.text === "" && released.tokens.length === 0)) return;
          this.record(released.text, released.tokens);
          await onText(released.text, released.tokens);
        },
        cancelled: () => this.cancelled || this.guard?.filtered === true,
        prefilled,
      }, this.prefillChunk);
      const result = await finishGuardedTurn(this.guard, generated, async (tail) => {
        this.record(tail.text, tail.tokens);
        await onText(tail.text, tail.tokens);
      }, () => this.sentText);
      if (this.seq !== undefined) {
        this.so.updateReply(this.seq, this.sentText, this.sentTokens, result.finish === null ? "interrupted" : "complete", result.finish);
      }
      this.so.logTurn(this.input.requestId, result.finish === null ? "turn cancelled" : "turn done", {
        finish_reason: result.finish, prompt_tokens: result.promptTokens, cached_tokens: result.cachedTokens,
        completion_tokens: result.tokens.length, ms: Date.now() - this.started,
      });
      await this.charge(result);
      return result;
    } catch (e) {
      if (this.seq !== undefined) this.so.updateReply(this.seq, this.sentText, this.sentTokens, "interrupted", null);
      throw e;
    } finally {
      this.so.endTurn(this.input.session === null);
    }
  }

  private async charge(r: GenerationResult): Promise<void> {
    const env = this.so.envForTurn;
    try {
      await env.ACCOUNTS.get(env.ACCOUNTS.idFromName(this.input.tenant)).record({
        keyHash: this.input.keyHash,
        model: this.input.manifest.id,
        promptTokens: r.promptTokens,
        cachedTokens: r.cachedTokens,
        completionTokens: r.tokens.length,
      });
    } catch (e) {
      console.error(JSON.stringify({ level: "error", component: "session", request_id: this.input.requestId, msg: "usage not recorded", error: String(e) }));
    }
  }

  private usage(r: GenerationResult) {
    return {
      prompt_tokens: r.promptTokens,
      completion_tokens: r.tokens.length,
      total_tokens: r.promptTokens + r.tokens.length,
      prompt_tokens_details: { cached_tokens: r.cachedTokens },
    };
  }

  async jsonResponse(): Promise<Response> {
    const r = await this.run(() => {});
    const model = this.input.manifest.id;
    const ids = this.plan.returnTokenIds;
    const choice = this.input.kind === "chat"
      ? { index: 0, message: { role: "assistant", content: r.text, refusal: null }, logprobs: null, finish_reason: r.finish, ...(ids && { token_ids: this.sentTokens }) }
      : { index: 0, text: r.text, logprobs: null, finish_reason: r.finish, ...(ids && { token_ids: this.sentTokens }) };
    const body = {
      id: this.id,
      object: this.input.kind === "chat" ? "chat.completion" : "text_completion",
      created: this.created,
      model,
      system_fingerprint: this.fingerprint,
      choices: [choice],
      usage: this.usage(r),
      ...(ids && { prompt_token_ids: this.plan.prompt }),
    };
    return Response.json(body, { headers: { "server-timing": `session;dur=${Date.now() - this.started}` } });
  }

  /**
   * The reply as server-sent events. The response starts once the prompt is prefilled, so that
   * what fails before any token (an overloaded shard: 429 with Retry-After; a context overflow)
   * is an HTTP error, not an event in a 200 stream.
   */
  async streamResponse(): Promise<Response> {
    const encoder = new TextEncoder();
    const chat = this.input.kind === "chat";
    const object = chat ? "chat.completion.chunk" : "text_completion";
    const model = this.input.manifest.id;
    const ids = this.plan.returnTokenIds;
    const usageField = this.plan.includeUsage ? { usage: null } : {};
    const chunk = (choice: object) => ({ id: this.id, object, created: this.created, model, system_fingerprint: this.fingerprint, choices: [choice], ...usageField });
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const send = (data: object | string) => {
      if (this.cancelled) return;
      try {
        controller.enqueue(encoder.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
      } catch {
        this.cancelled = true;
      }
    };
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: () => {
        this.cancelled = true;
      },
    });
    let started = false;
    let markStarted!: () => void;
    const prefilled = new Promise<void>((resolve) => (markStarted = resolve));
    const loop = async () => {
      if (chat) send(chunk({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null, ...(ids && { token_ids: [] }) }));
      try {
        const r = await this.run((text, tokens) => {
          const extra = ids ? { token_ids: tokens } : {};
          send(chunk(chat ? { index: 0, delta: { content: text }, logprobs: null, finish_reason: null, ...extra } : { index: 0, text, logprobs: null, finish_reason: null, ...extra }));
        }, () => {
          started = true;
          markStarted();
        });
        if (r.finish !== null) {
          send(chunk(chat ? { index: 0, delta: {}, logprobs: null, finish_reason: r.finish } : { index: 0, text: "", logprobs: null, finish_reason: r.finish }));
          if (this.plan.includeUsage) {
            send({ id: this.id, object, created: this.created, model, system_fingerprint: this.fingerprint, choices: [], usage: this.usage(r), ...(ids && { prompt_token_ids: this.plan.prompt }) });
          }
          send("[DONE]");
        }
      } catch (e) {
        // Before the first token nothing was sent: the caller answers with the error's status.
        if (!started) throw e;
        const err = e instanceof ApiError ? e : new ApiError(500, `Generation failed (request id ${this.input.requestId}).`, "server_error", "internal_error");
        if (!(e instanceof ApiError)) console.error(JSON.stringify({ level: "error", component: "session", request_id: this.input.requestId, msg: "stream failed", error: String(e) }));
        send(err.toJSON());
      } finally {
        if (!this.cancelled) {
          try {
            controller.close();
          } catch {
            // already closed by the reader
          }
        }
      }
    };
    const done = loop();
    await Promise.race([prefilled, done]);
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
    });
  }
}
