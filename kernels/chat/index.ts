/** Chat: rendering a conversation into a model's prompt text. */
export { renderChat, ChatTemplateError, type ChatMessage, type RenderOptions } from "./render.ts";
export { CHATML_TEMPLATE } from "./chatml.ts";
