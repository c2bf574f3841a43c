/**
 * Petrel's tokenizer: llama.cpp's SPM ("llama"), byte-level BPE ("gpt2", with every
 * pre-tokenizer llama.cpp knows) and WordPiece ("bert"), built from GGUF metadata.
 */
import type { GGUFValue } from "../gguf/types.ts";
import { BpeTokenizer } from "./bpe.ts";
import { Detokenizer, type DecodeOptions, type StreamDecoder } from "./detokenize.ts";
import { partitionSpecial } from "./special.ts";
import { SpmTokenizer } from "./spm.ts";
import { wellFormed } from "./unicode.ts";
import { loadVocab, type Vocab, type VocabType } from "./vocab.ts";
import { WpmTokenizer } from "./wpm.ts";

export { TokenizerError } from "./metadata.ts";
export type { DecodeOptions, StreamDecoder } from "./detokenize.ts";
export type { VocabType } from "./vocab.ts";

export interface EncodeOptions {
  /** Add the BOS/EOS (BERT: CLS/SEP) the vocabulary asks for. Default true. */
  addSpecial?: boolean;
  /** Recognize control tokens written as text (e.g. "<|im_start|>"). Default false. */
  parseSpecial?: boolean;
}

const utf8 = new TextDecoder();

/** Tokenizes one text fragment; `afterSpecial`: it starts the text or follows a special token. */
type FragmentEncoder = (text: string, afterSpecial: boolean, out: number[]) => void;

function fragmentEncoder(vocab: Vocab): FragmentEncoder {
  switch (vocab.type) {
    case "spm": {
      const spm = new SpmTokenizer(vocab);
      return (text, afterSpecial, out) => {
        const prefixed = vocab.addSpacePrefix && afterSpecial ? ` ${text}` : text;
        spm.tokenize(prefixed.replaceAll(" ", "\u2581"), out);
      };
    }
    case "bpe": {
      const bpe = new BpeTokenizer(vocab);
      return (text, _afterSpecial, out) => bpe.tokenize(vocab.escapeWhitespaces ? text.replaceAll(" ", "\u2581") : text, out);
    }
    case "wpm": {
      const wpm = new WpmTokenizer(vocab);
      return (text, _afterSpecial, out) => wpm.tokenize(text, out);
    }
  }
}

export class Tokenizer {
  private readonly encodeFragment: FragmentEncoder;
  private readonly detokenizer: Detokenizer;

  private constructor(private readonly vocab: Vocab) {
    this.encodeFragment = fragmentEncoder(vocab);
    this.detokenizer = new Detokenizer(vocab);
  }

  /** Builds the tokenizer a GGUF file's `tokenizer.*` metadata describes; throws TokenizerError if it cannot. */
  static fromMetadata(metadata: ReadonlyMap<string, GGUFValue>): Tokenizer {
    return new Tokenizer(loadVocab(metadata));
  }

  get type(): VocabType {
    return this.vocab.type;
  }

  get vocabSize(): number {
    return this.vocab.tokens.length;
  }

  get bos(): number | undefined {
    return this.vocab.special.bos;
  }

  get eos(): number | undefined {
    return this.vocab.special.eos;
  }

  get eot(): number | undefined {
    return this.vocab.special.eot;
  }

  /** Whether the token ends generation (EOS, EOT, EOM and the end tokens llama.cpp recognizes). */
  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const { addSpecial = true, parseSpecial = false } = options;
    const { type, special, addBos, addEos } = this.vocab;
    const out: number[] = [];
    // BERT always frames the text with CLS … SEP; the others follow add_bos/add_eos.
    const leading = type === "wpm" || addBos ? special.bos : undefined;
    const trailing = type === "wpm" ? special.sep : addEos ? special.eos : undefined;
    if (addSpecial && leading !== undefined) out.push(leading);
    let afterSpecial = true;
    for (const fragment of partitionSpecial(wellFormed(text), this.vocab, parseSpecial)) {
      if ("token" in fragment) out.push(fragment.token);
      else this.encodeFragment(fragment.text, afterSpecial, out);
      afterSpecial = "token" in fragment;
    }
    if (addSpecial && trailing !== undefined) out.push(trailing);
    return out;
  }

  /** Text of the ids; `skipSpecial` drops the added BOS/EOS and renders control tokens as nothing. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return this.detokenizer.decode(ids, options);
  }

  /** One token's piece (control tokens rendered unless `special` is false); may be part of a character. */
  tokenToPiece(id: number, options: { special?: boolean } = {}): string {
    return utf8.decode(this.tokenBytes(id, options));
  }

  /** One token's raw bytes (byte tokens and byte-level BPE pieces can be partial UTF-8). */
  tokenBytes(id: number, options: { special?: boolean } = {}): Uint8Array {
    return this.detokenizer.pieceBytes(id, options.special ?? true);
  }

  /** Incremental decoding for generation: `push` returns only complete characters. */
  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    return this.detokenizer.stream(options);
  }
}
