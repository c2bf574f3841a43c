/** Token attributes (llama_token_attr bits). */
export const Attr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
} as const;

/** GGUF token types (tokenizer.ggml.token_type values), in order, to attributes; others are UNDEFINED. */
export const ATTR_OF_TOKEN_TYPE: readonly number[] = [
  Attr.UNDEFINED,
  Attr.NORMAL,
  Attr.UNKNOWN,
  Attr.CONTROL,
  Attr.USER_DEFINED,
  Attr.UNUSED,
  Attr.BYTE,
];
