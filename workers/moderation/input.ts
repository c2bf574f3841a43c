/**
 * Input moderation of a generation request, in the worker before anything is generated: the
 * tenant's checks run over the messages (or the text prompt); a block is a 400
 * `content_policy_violation` naming the categories; PII the policy redacts is replaced in the
 * body that goes on. Token-id prompts have no text here: the SessionDO decodes and checks them
 * (turn.ts); for a routed model there is no tokenizer at the edge, so the policy's
 * `unreadableInput` lets them through (logged) or refuses them.
 */
import { moderateInput, type ChatMessage as ModeratedMessage, type ModerationPolicy, type ModerationResult, applyPolicySystemPrompt } from "../../kernels/moderation/index.ts";
import { ApiError, type OpenAIErrorBody } from "../errors.ts";
import type { ChatRequest, CompletionRequest } from "../schemas.ts";
import { moderationEngines, type EngineContext } from "./engines.ts";
import { logModeration } from "./log.ts";
import { checksInput, moderatesGeneration, tenantPolicy } from "./policy.ts";

/** 400 content_policy_violation; `categories` lists what blocked (OpenAI categories, `pii/<kind>`, `custom`). */
export class ContentPolicyError extends ApiError {
  constructor(
    readonly categories: string[],
    param: string,
  ) {
    super(400, `Your request was rejected by the content policy (${categories.join(", ")}).`, "invalid_request_error", "content_policy_violation", param);
  }

  override toJSON(): OpenAIErrorBody & { error: { categories: string[] } } {
    const body = super.toJSON();
    return { error: { ...body.error, categories: this.categories } };
  }
}

/** The categories of a result's blocking decisions, each once. */
export function blockedCategories(result: Pick<ModerationResult, "decisions">): string[] {
  return [...new Set(result.decisions.filter((d) => d.action === "block").map((d) => d.category))];
}

export async function runInputModeration(policy: ModerationPolicy, messages: readonly ModeratedMessage[], ctx: EngineContext, param: string): Promise<ModerationResult> {
  const started = Date.now();
  const result = await moderateInput(policy, messages, await moderationEngines(policy, ctx), { direction: "input" });
  logModeration(policy, result.decisions, { direction: "input", tenant: ctx.tenant, requestId: ctx.requestId }, { action: result.action, checks: result.checks, ms: Date.now() - started });
  if (result.action === "block") throw new ContentPolicyError(blockedCategories(result), param);
  return result;
}

type Body = ChatRequest | CompletionRequest;

/** A text prompt as a one-message conversation (token ids: null). */
function promptText(body: CompletionRequest): string | null {
  const p = body.prompt;
  if (typeof p === "string") return p;
  return typeof p[0] === "string" ? p[0] : null;
}

/**
 * Moderates a generation request's input. Returns the body to generate from (redacted; for a
 * routed model the pinned system prompt is applied here, at the edge the SessionDO applies it)
 * and the policy that still applies to the turn (output guard; at the edge the pinned prompt and
 * token-id prompts) — absent when the tenant's policy moderates nothing.
 */
export async function moderateGeneration(kind: "chat" | "completion", body: Body, ctx: EngineContext, opts: { routed: boolean }): Promise<{ body: Body; policy?: ModerationPolicy }> {
  const policy = await tenantPolicy(ctx.env, ctx.tenant);
  if (!moderatesGeneration(policy)) return { body };
  let out = body;
  if (kind === "chat") {
    const chat = body as ChatRequest;
    let messages = chat.messages as unknown as ModeratedMessage[];
    if (checksInput(policy)) messages = (await runInputModeration(policy, messages, ctx, "messages")).redactedMessages;
    if (opts.routed) messages = applyPolicySystemPrompt(policy, messages);
    out = { ...chat, messages: messages as unknown as ChatRequest["messages"] };
  } else if (checksInput(policy)) {
    const completion = body as CompletionRequest;
    const text = promptText(completion);
    if (text === null && opts.routed) {
      const action = policy.unreadableInput;
      logModeration(policy, [{ check: "rules", category: "unreadable", action }], { direction: "input", tenant: ctx.tenant, requestId: ctx.requestId }, { action, checks: [] });
      if (action === "block") {
        throw new ApiError(400, "Token-id prompts cannot be moderated for this model (it is served by an origin): send the prompt as text.", "invalid_request_error", "content_policy_violation", "prompt");
      }
    }
    if (text !== null) {
      const [redacted] = (await runInputModeration(policy, [{ role: "user", content: text }], ctx, "prompt")).redactedMessages;
      const prompt = redacted!.content as string;
      out = { ...completion, prompt: typeof completion.prompt === "string" ? prompt : [prompt] };
    }
  }
  return { body: out, policy };
}
