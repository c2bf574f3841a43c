import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ChatTemplateError, renderChat, type ChatMessage } from "../kernels/chat/index.ts";
import { parseGGUF } from "../kernels/gguf/reader.ts";

// Real models' tokenizer.chat_template values, verbatim.
const QWEN2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
const MISTRAL =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

/** Phi-3's template, read from the GGUF metadata of llama.cpp's phi-3 vocabulary fixture. */
function phi3Template(): string {
  const file = parseGGUF(new Uint8Array(readFileSync(new URL("./fixtures/vocab/ggml-vocab-phi-3.gguf", import.meta.url))));
  const template = file.metadata.get("tokenizer.chat_template");
  if (typeof template !== "string") throw new Error("the phi-3 fixture has no chat template");
  return template;
}

const turn: ChatMessage[] = [
  { role: "user", content: "Hi!" },
  { role: "assistant", content: "Hello. How can I help?" },
  { role: "user", content: "Name a colour." },
];
const withSystem: ChatMessage[] = [{ role: "system", content: "You are terse." }, ...turn];
const tokens = { bosToken: "<s>", eosToken: "</s>" };

describe("renderChat", () => {
  it("no template: ChatML, with the assistant header when a reply is wanted", () => {
    expect(renderChat(undefined, withSystem, { addGenerationPrompt: true, ...tokens })).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n" +
        "<|im_start|>user\nHi!<|im_end|>\n" +
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n" +
        "<|im_start|>user\nName a colour.<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
    expect(renderChat(undefined, [{ role: "user", content: "x" }], { addGenerationPrompt: false, ...tokens })).toBe("<|im_start|>user\nx<|im_end|>\n");
  });

  it("Qwen2: ChatML, with a default system prompt when none is given", () => {
    expect(renderChat(QWEN2, turn, { addGenerationPrompt: true, bosToken: "", eosToken: "<|im_end|>" })).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\nHi!<|im_end|>\n" +
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n" +
        "<|im_start|>user\nName a colour.<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
    expect(renderChat(QWEN2, withSystem, { addGenerationPrompt: false, bosToken: "", eosToken: "<|im_end|>" })).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n" +
        "<|im_start|>user\nHi!<|im_end|>\n" +
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n" +
        "<|im_start|>user\nName a colour.<|im_end|>\n",
    );
  });

  it("Llama-3: headers, BOS once, content trimmed (the filter binds tighter than +)", () => {
    const messages = [{ role: "system", content: "You are terse." }, { role: "user", content: "  Hi!\n" }];
    expect(renderChat(LLAMA3, messages, { addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>" })).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("Llama-2: system prompt folded into the first user turn, BOS before every [INST]", () => {
    expect(renderChat(LLAMA2, withSystem, { addGenerationPrompt: true, ...tokens })).toBe(
      "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST] Hello. How can I help? </s><s>[INST] Name a colour. [/INST]",
    );
  });

  it("Phi-3 (from the GGUF fixture): system messages dropped, the assistant tag always added", () => {
    expect(renderChat(phi3Template(), withSystem, { addGenerationPrompt: true, ...tokens })).toBe(
      "<s><|user|>\nHi!<|end|>\n<|assistant|>\nHello. How can I help?<|end|>\n<|user|>\nName a colour.<|end|>\n<|assistant|>\n",
    );
  });

  it("Mistral: [INST] turns, EOS after each answer", () => {
    expect(renderChat(MISTRAL, turn, { addGenerationPrompt: true, ...tokens })).toBe(
      "<s>[INST] Hi! [/INST]Hello. How can I help?</s> [INST] Name a colour. [/INST]",
    );
  });

  it("a template's raise_exception becomes a ChatTemplateError with its message", () => {
    const render = () => renderChat(MISTRAL, withSystem, { addGenerationPrompt: true, ...tokens });
    expect(render).toThrow(ChatTemplateError);
    expect(render).toThrow(/failed to render: .*Conversation roles must alternate/);
  });

  it("a template that does not parse is a clear error", () => {
    const render = () => renderChat("{% for m in messages %}{{ m.content }}", turn, { addGenerationPrompt: true, ...tokens });
    expect(render).toThrow(ChatTemplateError);
    expect(render).toThrow(/the chat template does not parse/);
  });

  it("a template that fails while rendering is a clear error", () => {
    const render = () => renderChat("{{ messages[0].content.no_such_method() }}", turn, { addGenerationPrompt: true, ...tokens });
    expect(render).toThrow(ChatTemplateError);
    expect(render).toThrow(/the chat template failed to render/);
  });

  it("extra variables reach the template; the standard ones cannot be overridden", () => {
    const template = "{% if enable_thinking %}think{% else %}plain{% endif %}|{{ bos_token }}|{{ messages | length }}|{{ messages[0].name }}";
    const messages = [{ role: "user", content: "q", name: "ada" }];
    expect(renderChat(template, messages, { addGenerationPrompt: true, ...tokens, variables: { enable_thinking: true, bos_token: "X" } })).toBe("think|<s>|1|ada");
    expect(renderChat(template, messages, { addGenerationPrompt: true, ...tokens })).toBe("plain|<s>|1|ada");
  });
});
