import { describe, expect, it } from "vitest";
import { isKQuant, jsParityTests } from "./helpers/js-parity-suite.ts";
import { referenceFiles } from "./helpers/parity.ts";

describe("js reference backend matches llama.cpp: float, legacy-quant, qwen2 and stories260K fixtures", () => {
  it("the fixture set is complete", () => {
    expect(referenceFiles().map((f) => f.model)).toHaveLength(15);
  });
  jsParityTests(referenceFiles().filter((f) => !isKQuant(f)));
});
