/**
 * Per-tenant moderation policy: which checks run, per-category thresholds and actions,
 * blocklists and patterns, PII actions, the pinned system prompt, the streaming output window
 * and logging. Validated with zod; every field has a default, so `{}` is the default policy.
 */
import { z } from "zod";
import { CATEGORIES, type Category } from "./taxonomy.ts";
import { PII_KINDS } from "./pii.ts";

export const CategorySchema = z.enum(CATEGORIES);
/** block: refuse the request / stop the stream; flag: report and log but let it through; off: ignore. */
export const CategoryActionSchema = z.enum(["block", "flag", "off"]);
export const RuleActionSchema = z.enum(["block", "flag", "redact"]);
export const PiiActionSchema = z.enum(["block", "redact", "allow"]);

/** Keys are named, never given: a policy may only name secrets of this form (so it cannot read others). */
const secretName = z.string().regex(/^MODERATION_[A-Z0-9_]{1,64}_KEY$/, "secret names look like MODERATION_<NAME>_KEY");

const ruleId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "rule ids are 1–64 characters of A-Z a-z 0-9 _ . -");

export const BlocklistSchema = z
  .object({
    id: ruleId,
    /** the OpenAI category a hit counts as (omit for a custom rule) */
    category: CategorySchema.optional(),
    action: RuleActionSchema.default("block"),
    terms: z.array(z.string().min(1).max(200)).min(1).max(5000),
    /** match whole words only (Unicode letters/digits around the term end the match) */
    wholeWord: z.boolean().default(true),
    caseSensitive: z.boolean().default(false),
  })
  .strict();

export const PatternSchema = z
  .object({
    id: ruleId,
    category: CategorySchema.optional(),
    action: RuleActionSchema.default("block"),
    /** a JavaScript regular expression source; matched with the "g" flag added */
    pattern: z.string().min(1).max(2000),
    flags: z.string().regex(/^[imsu]*$/, "flags may only use i, m, s, u").default("iu"),
  })
  .strict()
  .superRefine((p, ctx) => {
    try {
      new RegExp(p.pattern, `${p.flags}g`);
    } catch (e) {
      ctx.addIssue({ code: "custom", path: ["pattern"], message: `invalid regular expression: ${(e as Error).message}` });
    }
  });

const PiiSchema = z
  .object({
    email: PiiActionSchema.default("allow"),
    phone: PiiActionSchema.default("allow"),
    card: PiiActionSchema.default("redact"),
    iban: PiiActionSchema.default("redact"),
    secret: PiiActionSchema.default("redact"),
  })
  .strict();

export const ModerationPolicySchema = z
  .object({
    /** a name for logs */
    id: z.string().min(1).max(128).default("default"),
    checks: z
      .object({
        rules: z.boolean().default(true),
        classifier: z.boolean().default(true),
        /** needs `engines.judge` */
        judge: z.boolean().default(false),
        /** needs `external` below (and a fetch) */
        external: z.boolean().default(false),
      })
      .strict()
      .default({ rules: true, classifier: true, judge: false, external: false }),
    /** action for categories not listed in `categories` */
    defaultAction: CategoryActionSchema.default("block"),
    /** per category: action and threshold (overrides the classifier's shipped threshold) */
    categories: z
      .partialRecord(CategorySchema, z.object({ action: CategoryActionSchema.optional(), threshold: z.number().min(0).max(1).optional() }).strict())
      .default({}),
    rules: z
      .object({
        blocklists: z.array(BlocklistSchema).default([]),
        patterns: z.array(PatternSchema).default([]),
      })
      .strict()
      .default({ blocklists: [], patterns: [] }),
    pii: PiiSchema.default({ email: "allow", phone: "allow", card: "redact", iban: "redact", secret: "redact" }),
    /** which chat roles input moderation reads (the pinned tenant prompt is never moderated) */
    inputRoles: z.array(z.string().min(1)).min(1).default(["system", "developer", "user", "assistant", "tool", "function"]),
    /** a tenant system prompt that is always first; see applyPinnedSystemPrompt */
    systemPrompt: z
      .object({
        content: z.string().min(1).max(100_000),
        /** what happens to client system messages: merged after the pinned text (default), kept as later system messages, turned into user messages, or dropped */
        clientSystem: z.enum(["merge", "append", "demote", "drop"]).default("merge"),
      })
      .strict()
      .optional(),
    classifier: z
      .object({
        /** long texts are scored in overlapping windows of this many characters (max score wins) */
        chunkChars: z.number().int().min(64).max(10_000).default(320),
      })
      .strict()
      .default({ chunkChars: 320 }),
    output: z
      .object({
        enabled: z.boolean().default(true),
        /** characters held back before release; spans up to this length are never partly released */
        windowChars: z.number().int().min(16).max(20_000).default(256),
        /** new characters between two checks (each check releases what lies beyond the window) */
        stepChars: z.number().int().min(1).max(20_000).default(128),
      })
      .strict()
      .default({ enabled: true, windowChars: 256, stepChars: 128 }),
    judge: z
      .object({
        /** the categories the judge is asked about (default: all) */
        categories: z.array(CategorySchema).min(1).optional(),
        /** the judge model: one this worker serves (edge), or the model name at `url` */
        model: z.string().min(1).max(256).optional(),
        /** an OpenAI-compatible chat completions endpoint (an origin); absent: the worker's own model */
        url: z.url().optional(),
        /** the secret holding `url`'s bearer key (never the key itself in a policy) */
        apiKeySecret: secretName.optional(),
        /** tokens the judge may answer with ("unsafe\nO1,O5" fits in 16) */
        maxTokens: z.number().int().min(1).max(256).default(16),
      })
      .strict()
      .default({ maxTokens: 16 }),
    external: z
      .object({
        /** an OpenAI-compatible moderations endpoint, e.g. https://api.openai.com/v1/moderations */
        url: z.url(),
        model: z.string().min(1).default("omni-moderation-latest"),
        timeoutMs: z.number().int().min(100).max(60_000).default(5000),
        /** the secret holding the endpoint's bearer key */
        apiKeySecret: secretName.optional(),
      })
      .strict()
      .optional(),
    /**
     * input the edge cannot read as text (a token-id prompt to a model served by an origin: no
     * tokenizer at the edge): let it through, logged (its output is still moderated), or refuse it
     */
    unreadableInput: z.enum(["allow", "block"]).default("allow"),
    /** when an optional check (classifier, judge, external) fails: let the text through, or block */
    onCheckError: z.enum(["allow", "block"]).default("allow"),
    logging: z
      .object({
        /** store the flagged span's text in decision records (off by default) */
        includeFlaggedText: z.boolean().default(false),
      })
      .strict()
      .default({ includeFlaggedText: false }),
  })
  .strict();

export type ModerationPolicy = z.infer<typeof ModerationPolicySchema>;
export type ModerationPolicyInput = z.input<typeof ModerationPolicySchema>;
export type Blocklist = z.infer<typeof BlocklistSchema>;
export type PatternRule = z.infer<typeof PatternSchema>;

export class PolicyError extends Error {
  constructor(
    message: string,
    readonly issues: z.core.$ZodIssue[],
  ) {
    super(message);
    this.name = "PolicyError";
  }
}

/** Validate a tenant policy (e.g. a JSON value from KV) and fill in defaults. */
export function parsePolicy(input: unknown): ModerationPolicy {
  const r = ModerationPolicySchema.safeParse(input ?? {});
  if (!r.success) throw new PolicyError(`invalid moderation policy: ${z.prettifyError(r.error)}`, r.error.issues);
  return r.data;
}

/**
 * The default policy (what the local development key gets): rules and the shipped classifier;
 * every category blocks at the classifier's own threshold; card numbers, IBANs and secrets are
 * redacted, e-mail and phone numbers allowed; no blocklists; no judge or external endpoint.
 */
export const DEFAULT_POLICY: ModerationPolicy = parsePolicy({});

export function categoryAction(policy: ModerationPolicy, c: Category): "block" | "flag" | "off" {
  return policy.categories[c]?.action ?? policy.defaultAction;
}

export { PII_KINDS };
