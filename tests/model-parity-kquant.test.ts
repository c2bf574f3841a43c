import { describe, expect, it } from "vitest";
import { isKQuant, jsParityTests } from "./helpers/js-parity-suite.ts";
import { referenceFiles } from "./helpers/parity.ts";

describe("js reference backend matches llama.cpp: K-quant fixtures", () => {
  const files = referenceFiles().filter(isKQuant);
  it("covers Q2_K through Q6_K", () => {
    expect(files.map((f) => f.model)).toEqual(["llama-Q2_K.gguf", "llama-Q3_K_M.gguf", "llama-Q4_K_M.gguf", "llama-Q5_K_M.gguf", "llama-Q6_K.gguf"]);
  });
  jsParityTests(files);
});
