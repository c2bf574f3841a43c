/** Typed reads of `tokenizer.*` GGUF metadata that name the key in every error. */
import type { GGUFValue } from "../gguf/types.ts";

/** Malformed or unsupported tokenizer metadata. */
export class TokenizerError extends Error {
  override name = "TokenizerError";
}

export class TokenizerMetadata {
  constructor(private readonly metadata: ReadonlyMap<string, GGUFValue>) {}

  string(key: string): string | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw new TokenizerError(`${key} must be a string`);
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw new TokenizerError(`${key} must be a boolean`);
    return v;
  }

  /** A non-negative integer (token ids are stored as u32, sometimes as other integer types). */
  index(key: string): number | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new TokenizerError(`${key} must be a non-negative integer`);
    return n;
  }

  strings(key: string): string[] | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new TokenizerError(`${key} must be an array of strings`);
    return v as string[];
  }

  /** A numeric array of at least `minLength` elements, as float32 (llama.cpp accepts f32 or i32 scores). */
  floats(key: string, minLength: number): Float32Array | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (!(v instanceof Float32Array || v instanceof Int32Array)) throw new TokenizerError(`${key} must be an array of float32 or int32`);
    if (v.length < minLength) throw new TokenizerError(`${key} has ${v.length} entries for ${minLength} tokens`);
    return v instanceof Float32Array ? v : Float32Array.from(v);
  }

  ints(key: string, minLength: number): Int32Array | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (!(v instanceof Int32Array)) throw new TokenizerError(`${key} must be an array of int32`);
    if (v.length < minLength) throw new TokenizerError(`${key} has ${v.length} entries for ${minLength} tokens`);
    return v;
  }
}
