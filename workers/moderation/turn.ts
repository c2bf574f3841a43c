/**
 * The SessionDO's moderation hooks for one turn, under the policy the worker resolved for the
 * tenant (TurnInput.moderation): the pinned system prompt at render time (never stored, so a
 * session's history stays the client's), the check of a token-id prompt (decoded here, where the
 * tokenizer is), and the output guard of the reply.
 */
import { applyPolicySystemPrompt } from "../../kernels/moderation/index.ts";
import type { TurnInput } from "../../durable-objects/protocol.ts";
import type { Tokenizer } from "../../kernels/tokenizer/index.ts";
import type { Env } from "../env.ts";
import type { CompletionRequest } from "../schemas.ts";
import { runInputModeration } from "./input.ts";
import { GuardedOutput, type Release } from "./output.ts";
import { checksInput } from "./policy.ts";

/** The conversation as the model sees it: the tenant's pinned system prompt first. */
export function withPinnedPrompt<M extends { role: string; content: string }>(input: TurnInput, messages: M[]): M[] {
  const policy = input.moderation;
  if (!policy?.systemPrompt) return messages;
  return applyPolicySystemPrompt(policy, messages) as M[];
}

/** A token-id completion prompt, decoded and checked like a text prompt (400 content_policy_violation on a block). */
export async function checkTokenPrompt(env: Env, input: TurnInput, decode: (ids: number[]) => string): Promise<void> {
  const policy = input.moderation;
  if (!policy || !checksInput(policy) || input.kind !== "completion") return;
  const p = (input.body as CompletionRequest).prompt;
  const ids = typeof p === "string" || typeof p[0] === "string" ? null : ((Array.isArray(p[0]) ? p[0] : p) as number[]);
  if (ids === null) return; // text prompts were checked by the worker
  await runInputModeration(policy, [{ role: "user", content: decode(ids) }], { env, tenant: input.tenant, keyHash: input.keyHash, requestId: input.requestId }, "prompt");
}

/** The reply's output guard; `tokenizer` tells it which generated ids are wholly within the released text. */
export function turnOutputGuard(env: Env, input: TurnInput, stream: boolean, tokenizer: Tokenizer): Promise<GuardedOutput | undefined> {
  // generated text continues the prompt: decode after the BOS the vocabulary adds, as the generation loop does
  const added = tokenizer.encode("", { addSpecial: true });
  const primer = added.length > 0 && added[0] === tokenizer.bos ? [added[0]] : [];
  const decode = (ids: number[]) => tokenizer.decode([...primer, ...ids], { skipSpecial: true });
  return GuardedOutput.create(env, input.moderation, { stream, tenant: input.tenant, requestId: input.requestId, decode });
}

/**
 * The end of a guarded turn: the guard's tail released (or the reply cut with content_filter)
 * and the result's text made what was actually released.
 */
export async function finishGuardedTurn<R extends { finish: string | null; text: string }>(
  guard: GuardedOutput | undefined,
  result: R,
  release: (r: Release) => Promise<void>,
  releasedText: () => string,
): Promise<R> {
  if (!guard || (result.finish === null && !guard.filtered)) return result; // unguarded, or the client went away
  const tail = guard.filtered ? null : await guard.finish();
  if (tail !== null && (tail.text.length > 0 || tail.tokens.length > 0)) await release(tail);
  return { ...result, finish: tail === null ? "content_filter" : result.finish, text: releasedText() };
}
