/**
 * POST /v1/moderations in OpenAI's schema: request validation, input grouping and the response
 * body (`id`, `model`, `results[]` with `flagged`, `categories`, `category_scores` and
 * `category_applied_input_types`, all 13 category keys always present).
 */
import { z } from "zod";
import { type CategoryMap, categoryMap } from "./taxonomy.ts";
import type { ModerationPolicy } from "./policy.ts";
import { type ModerationEngines, type ModerationResult, moderateText } from "./pipeline.ts";

export const ModerationsRequestSchema = z.object({
  input: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z
      .array(
        z.union([
          z.object({ type: z.literal("text"), text: z.string() }),
          z.object({ type: z.literal("image_url"), image_url: z.object({ url: z.string() }) }),
        ]),
      )
      .min(1),
  ]),
  model: z.string().optional(),
});
export type ModerationsRequest = z.infer<typeof ModerationsRequestSchema>;

export interface ModerationsInput {
  text: string;
  /** the input had image parts (not moderated here; reported in no category) */
  hadImage: boolean;
}

/**
 * OpenAI's grouping: a string is one input; an array of strings is one input per string; an
 * array of multi-modal parts is ONE input (its text parts joined by newlines).
 */
export function moderationsInputs(req: ModerationsRequest): ModerationsInput[] {
  if (typeof req.input === "string") return [{ text: req.input, hadImage: false }];
  if (req.input.every((x) => typeof x === "string")) return (req.input as string[]).map((text) => ({ text, hadImage: false }));
  const parts = req.input as Exclude<ModerationsRequest["input"], string | string[]>;
  return [
    {
      text: parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("\n"),
      hadImage: parts.some((p) => p.type === "image_url"),
    },
  ];
}

export interface OpenAIModeration {
  flagged: boolean;
  categories: CategoryMap<boolean>;
  category_scores: CategoryMap<number>;
  category_applied_input_types: CategoryMap<("text" | "image")[]>;
}

export interface OpenAIModerationsResponse {
  id: string;
  model: string;
  results: OpenAIModeration[];
}

export function toOpenAIModeration(result: Pick<ModerationResult, "flagged" | "categories" | "scores">, input: { text: string } = { text: "x" }): OpenAIModeration {
  const applied: ("text" | "image")[] = input.text.length > 0 ? ["text"] : [];
  return {
    flagged: result.flagged,
    categories: categoryMap((c) => result.categories[c] === true),
    category_scores: categoryMap((c) => {
      const v = result.scores[c];
      return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
    }),
    category_applied_input_types: categoryMap(() => [...applied]),
  };
}

function randomId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return `modr-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function buildModerationsResponse(
  results: readonly Pick<ModerationResult, "flagged" | "categories" | "scores">[],
  opts: { model: string; id?: string; inputs?: readonly { text: string }[] },
): OpenAIModerationsResponse {
  return {
    id: opts.id ?? randomId(),
    model: opts.model,
    results: results.map((r, i) => toOpenAIModeration(r, opts.inputs?.[i])),
  };
}

/** The model name we report: our classifier's, unless the client named one. */
export const PETREL_MODERATION_MODEL = "petrel-moderation-1";

/**
 * Everything the /v1/moderations route does after auth: validate the body, moderate each input
 * with every enabled check (no early exit), and build the response. Throws a ZodError on a bad body.
 */
export async function handleModerationsRequest(
  body: unknown,
  policy: ModerationPolicy,
  engines: ModerationEngines,
  opts: { id?: string } = {},
): Promise<{ response: OpenAIModerationsResponse; results: ModerationResult[] }> {
  const req = ModerationsRequestSchema.parse(body);
  const inputs = moderationsInputs(req);
  const results = await Promise.all(inputs.map((i) => moderateText(policy, i.text, engines, { exhaustive: true })));
  return { response: buildModerationsResponse(results, { model: req.model ?? PETREL_MODERATION_MODEL, id: opts.id, inputs }), results };
}

