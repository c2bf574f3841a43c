/**
 * Request bodies the Node origin accepts: the worker's own schemas (OpenAI's shapes plus the
 * extensions vLLM and llama.cpp servers share), except that `model` may be any id or absent —
 * the origin serves its one model whatever it is called. Session fields are accepted and ignored.
 */
import { z } from "zod";
import { chatRequestSchema, completionRequestSchema } from "../../workers/schemas.ts";

export { contentText, describeIssue } from "../../workers/schemas.ts";

const anyModel = { model: z.string().max(256).nullish() };

export const chatSchema = chatRequestSchema.extend(anyModel);
export const completionSchema = completionRequestSchema.extend(anyModel);

export type ChatBody = z.infer<typeof chatSchema>;
export type CompletionBody = z.infer<typeof completionSchema>;
