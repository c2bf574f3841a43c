/**
 * Request bodies, validated with zod. Fields OpenAI defines but Petrel does not implement are
 * refused with a 400 naming the field, never silently ignored; unknown fields are dropped.
 */
import { z } from "zod";

const SESSION_RE = /^[A-Za-z0-9._:-]{1,128}$/;

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(16)]).nullish();

/** Token id → bias in [-100, 100], as in OpenAI's logit_bias. */
const logitBias = z
  .record(z.string().regex(/^\d+$/, "logit_bias keys must be token ids"), z.number().min(-100).max(100))
  .nullish();

const sampling = {
  model: z.string().min(1).max(256),
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
  logit_bias: logitBias,
  user: z.string().max(256).nullish(),
  n: z.literal(1, { error: "n > 1 is not supported yet: ask for one choice (n=1)" }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  /** Session id (the X-Session-Id header takes precedence). */
  session: z.string().regex(SESSION_RE, "session ids are 1–128 characters of A-Z a-z 0-9 . _ : -").nullish(),
  /** Petrel/vLLM extension: return prompt_token_ids and token_ids. */
  return_token_ids: z.boolean().nullish(),
  /** Petrel/vLLM extension: keep generating past end-of-generation tokens. */
  ignore_eos: z.boolean().nullish(),
  /** Petrel extension: "auto" drops the oldest turns (keeping the system prompt) when the context is full. */
  truncation: z.enum(["auto", "disabled"]).nullish(),
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

export const chatRequestSchema = z.object({
  ...sampling,
  messages: z.array(message).min(1, "messages must hold at least one message"),
  max_completion_tokens: z.number().int().min(1).nullish(),
  tools: z.array(z.unknown()).max(0, "tools are not supported yet").nullish(),
  tool_choice: z.literal("none", { error: "tools are not supported yet" }).nullish(),
  response_format: z.object({ type: z.literal("text", { error: "only response_format {type: 'text'} is supported" }) }).nullish(),
});

const tokenIds = z.array(z.number().int().min(0)).min(1, "a token-id prompt must hold at least one id");

export const completionRequestSchema = z.object({
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).length(1, "only one prompt per request (batches of prompts are not supported)"),
    tokenIds,
    z.array(tokenIds).length(1, "only one prompt per request (batches of prompts are not supported)"),
  ]),
  echo: z.literal(false, { error: "echo is not supported" }).nullish(),
  suffix: z.null({ error: "suffix is not supported" }).optional(),
  best_of: z.literal(1, { error: "best_of > 1 is not supported" }).nullish(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type CompletionRequest = z.infer<typeof completionRequestSchema>;
export type ChatMessage = z.infer<typeof message>;

export const sessionIdSchema = z.string().regex(SESSION_RE);

export const createKeySchema = z.object({
  tenant: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, "tenant: 1–64 characters of A-Z a-z 0-9 . _ : -"),
  name: z.string().max(128).optional(),
  rpm: z.number().int().min(1).optional(),
  tpm: z.number().int().min(1).optional(),
});

/** The message text of a content value (text parts joined). */
export function contentText(c: string | { type: "text"; text: string }[] | null | undefined): string {
  if (c === null || c === undefined) return "";
  return typeof c === "string" ? c : c.map((p) => p.text).join("");
}

/** A zod issue as an OpenAI error's message and param ("messages[0].role"). */
export function describeIssue(issue: z.core.$ZodIssue): { message: string; param: string | null } {
  let param = "";
  for (const p of issue.path) param += typeof p === "number" ? `[${p}]` : param ? `.${String(p)}` : String(p);
  const where = param ? `${param}: ` : "";
  // A record key's or a map element's own issue says more than "Invalid key in record".
  const nested = (issue as { issues?: z.core.$ZodIssue[] }).issues?.[0];
  const detail = (issue.code === "invalid_key" || issue.code === "invalid_element") && nested ? nested.message : issue.message;
  return { message: `Invalid request: ${where}${detail}`, param: param || null };
}
