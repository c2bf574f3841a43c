/**
 * The ChatML layout (`<|im_start|>role\ncontent<|im_end|>\n` per message, then
 * `<|im_start|>assistant\n` to prompt a reply): what Petrel uses when a model carries no
 * `tokenizer.chat_template`, as llama.cpp does. Written as a template so it renders through the
 * same path as a model's own.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
