/**
 * Chat templates: a model's `tokenizer.chat_template` (Jinja) rendered with @huggingface/jinja,
 * given the variables Hugging Face's apply_chat_template passes (messages, add_generation_prompt,
 * bos_token, eos_token; templates may also call raise_exception and strftime_now). Parsed
 * templates are cached, since a model renders the same one for every request.
 */
import { Template } from "@huggingface/jinja";
import { CHATML_TEMPLATE } from "./chatml.ts";

export interface ChatMessage {
  role: string;
  content: string;
  /** Other fields (name, tool_call_id, …) reach the template as they are. */
  [field: string]: unknown;
}

export interface RenderOptions {
  /** End with the header that makes the model answer as the assistant. */
  addGenerationPrompt: boolean;
  bosToken: string;
  eosToken: string;
  /** More template variables (e.g. tools, enable_thinking); the ones above take precedence. */
  variables?: Record<string, unknown>;
}

/** A template that does not parse, or that fails (or raises) while rendering. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

const MAX_CACHED = 16;
const parsed = new Map<string, Template>();

function compile(source: string): Template {
  let template = parsed.get(source);
  if (template) return template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new ChatTemplateError(`the chat template does not parse: ${messageOf(e)}`, { cause: e });
  }
  if (parsed.size >= MAX_CACHED) parsed.delete(parsed.keys().next().value!);
  parsed.set(source, template);
  return template;
}

/** The prompt text for `messages`; ChatML when `template` is undefined (the model has none). */
export function renderChat(template: string | undefined, messages: readonly ChatMessage[], opts: RenderOptions): string {
  const compiled = compile(template ?? CHATML_TEMPLATE);
  try {
    return compiled.render({
      ...opts.variables,
      messages,
      add_generation_prompt: opts.addGenerationPrompt,
      bos_token: opts.bosToken,
      eos_token: opts.eosToken,
    });
  } catch (e) {
    throw new ChatTemplateError(`the chat template failed to render: ${messageOf(e)}`, { cause: e });
  }
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));
