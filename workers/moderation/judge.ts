/**
 * Where the LLM judge's completion comes from: a model this worker serves (a fresh ephemeral
 * SessionDO; the judge's own turn is not moderated), or an OpenAI-compatible chat completions
 * endpoint (an origin). Greedy, a few tokens: the answer is "safe" or "unsafe\n<codes>".
 */
import type { TurnInput } from "../../durable-objects/protocol.ts";
import { readManifest } from "../manifest.ts";
import { isOpenAIErrorBody } from "../errors.ts";
import { chatRequestSchema } from "../schemas.ts";
import type { EngineContext } from "./engines.ts";

interface ChatAnswer {
  choices?: { message?: { content?: string | null } }[];
}

function answerText(body: unknown, from: string): string {
  if (isOpenAIErrorBody(body)) throw new Error(`judge ${from}: ${body.error.message}`);
  const content = (body as ChatAnswer).choices?.[0]?.message?.content;
  if (typeof content !== "string") throw new Error(`judge ${from}: no message content in the answer`);
  return content;
}

const judgeBody = (model: string, maxTokens: number, prompt: string) => ({ model, messages: [{ role: "user" as const, content: prompt }], max_tokens: maxTokens, temperature: 0 });

export async function edgeJudgeCompletion(ctx: EngineContext, judge: { model: string; maxTokens: number }, prompt: string): Promise<string> {
  const manifest = await readManifest(ctx.env.MODELS, judge.model);
  if (!manifest) throw new Error(`judge model '${judge.model}' is not served here`);
  const ns = ctx.env.SESSIONS;
  const turn: TurnInput = {
    kind: "chat",
    requestId: ctx.requestId,
    tenant: ctx.tenant,
    keyHash: ctx.keyHash,
    session: null,
    manifest,
    body: chatRequestSchema.parse(judgeBody(judge.model, judge.maxTokens, prompt)),
  };
  const res = await ns.get(ns.newUniqueId()).fetch("https://session/turn", {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": ctx.requestId },
    body: JSON.stringify(turn),
  });
  return answerText(await res.json(), `'${judge.model}'`);
}

export async function urlJudgeCompletion(
  judge: { url: string; model: string; maxTokens: number; apiKey?: string; fetch: typeof fetch; requestId: string },
  prompt: string,
): Promise<string> {
  const res = await judge.fetch(judge.url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": judge.requestId, ...(judge.apiKey ? { authorization: `Bearer ${judge.apiKey}` } : {}) },
    body: JSON.stringify(judgeBody(judge.model, judge.maxTokens, prompt)),
  });
  return answerText(await res.json().catch(() => ({})), `at ${judge.url} (HTTP ${res.status})`);
}
