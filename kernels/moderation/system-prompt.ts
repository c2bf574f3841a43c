/**
 * The tenant's pinned system prompt: always the first message; a client system message can
 * never replace it or come before it.
 */
import type { ChatMessage, ContentPart } from "./pipeline.ts";
import type { ModerationPolicy } from "./policy.ts";

export type ClientSystemHandling = "merge" | "append" | "demote" | "drop";

const SYSTEM_ROLES = new Set(["system", "developer"]);

function textOf(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((p): p is { type: "text"; text: string } => p.type === "text" && typeof (p as { text?: unknown }).text === "string")
    .map((p) => p.text)
    .join("\n");
}

/**
 * Put `pinned` first. Client system/developer messages are
 *  - "merge" (default): appended to the pinned text in one leading system message, after a
 *    separator (templates that allow a single system message keep working);
 *  - "append": kept as system messages right after the pinned one;
 *  - "demote": turned into user messages where they stood;
 *  - "drop": removed.
 * The other messages keep their order.
 */
export function applyPinnedSystemPrompt(messages: readonly ChatMessage[], pinned: string, handling: ClientSystemHandling = "merge"): ChatMessage[] {
  const client = messages.filter((m) => SYSTEM_ROLES.has(m.role));
  const rest = messages.filter((m) => !SYSTEM_ROLES.has(m.role));
  switch (handling) {
    case "merge": {
      const extra = client.map((m) => textOf(m.content)).filter((t) => t.trim() !== "");
      const content = extra.length ? `${pinned}\n\n${extra.join("\n\n")}` : pinned;
      return [{ role: "system", content }, ...rest.map((m) => ({ ...m }))];
    }
    case "append":
      return [{ role: "system", content: pinned }, ...client.map((m) => ({ ...m, role: "system" })), ...rest.map((m) => ({ ...m }))];
    case "demote":
      return [{ role: "system", content: pinned }, ...messages.map((m) => (SYSTEM_ROLES.has(m.role) ? { ...m, role: "user", content: textOf(m.content) as string | ContentPart[] } : { ...m }))];
    case "drop":
      return [{ role: "system", content: pinned }, ...rest.map((m) => ({ ...m }))];
  }
}

/** The policy's pinned prompt applied, or the messages unchanged when the tenant has none. */
export function applyPolicySystemPrompt(policy: ModerationPolicy, messages: readonly ChatMessage[]): ChatMessage[] {
  return policy.systemPrompt ? applyPinnedSystemPrompt(messages, policy.systemPrompt.content, policy.systemPrompt.clientSystem) : messages.map((m) => ({ ...m }));
}
