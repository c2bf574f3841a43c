/**
 * Request bodies the Node origin accepts (OpenAI's shapes plus the extensions vLLM and
 * llama.cpp servers share: top_k, min_p, repetition_penalty, ignore_eos, return_token_ids).
 * Fields it cannot honour are refused with a 400 naming them; unknown fields are ignored, as
 * OpenAI-compatible servers do.
 */
import { z } from "zod";

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(16)]).nullish();

const sampling = {
  /** Any id: the origin serves its one model whatever it is called. */
  model: z.string().max(256).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop,
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, "logit_bias keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  user: z.string().max(256).nullish(),
  n: z.literal(1, { error: "n > 1 is not supported: ask for one choice" }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  ignore_eos: z.boolean().nullish(),
  return_token_ids: z.boolean().nullish(),
  logprobs: z.union([z.literal(false), z.null()], { error: "logprobs are not supported" }).optional(),
  top_logprobs: z.null({ error: "logprobs are not supported" }).optional(),
};

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const content = z.union([z.string(), z.array(textPart, { error: "only text content parts are supported" })]);

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content, name: z.string().optional() }),
  z.object({ role: z.literal("developer"), content, name: z.string().optional() }),
  z.object({ role: z.literal("user"), content, name: z.string().optional() }),
  z.object({ role: z.literal("assistant"), content: content.nullish(), name: z.string().optional() }),
  z.object({ role: z.literal("tool"), content, tool_call_id: z.string().optional() }),
]);

export const chatSchema = z.object({
  ...sampling,
  messages: z.array(message).min(1, "messages must hold at least one message"),
  max_completion_tokens: z.number().int().min(1).nullish(),
  tools: z.array(z.unknown()).max(0, "tools are not supported").nullish(),
  tool_choice: z.literal("none", { error: "tools are not supported" }).nullish(),
  response_format: z.object({ type: z.literal("text", { error: "only response_format {type: 'text'} is supported" }) }).nullish(),
});

const tokenIds = z.array(z.number().int().min(0)).min(1, "a token-id prompt must hold at least one id");

export const completionSchema = z.object({
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).length(1, "only one prompt per request"),
    tokenIds,
    z.array(tokenIds).length(1, "only one prompt per request"),
  ]),
  echo: z.literal(false, { error: "echo is not supported" }).nullish(),
  suffix: z.null({ error: "suffix is not supported" }).optional(),
  best_of: z.literal(1, { error: "best_of > 1 is not supported" }).nullish(),
});

export type ChatBody = z.infer<typeof chatSchema>;
export type CompletionBody = z.infer<typeof completionSchema>;

export function contentText(c: string | { type: "text"; text: string }[] | null | undefined): string {
  if (c === null || c === undefined) return "";
  return typeof c === "string" ? c : c.map((p) => p.text).join("");
}

/** The first zod issue as an OpenAI-style message and param ("messages[0].role"). */
export function describeIssue(issue: z.core.$ZodIssue): { message: string; param: string | null } {
  let param = "";
  for (const p of issue.path) param += typeof p === "number" ? `[${p}]` : param ? `.${String(p)}` : String(p);
  return { message: `Invalid request: ${param ? `${param}: ` : ""}${issue.message}`, param: param || null };
}
