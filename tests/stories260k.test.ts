import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { createJsBackend } from "../kernels/model/backends/js.ts";
import { generate } from "../kernels/model/generate.ts";
import { loadModel } from "../kernels/model/model.ts";
import { REFERENCE_DIR } from "./helpers/parity.ts";
import { petrel } from "./helpers/cli.ts";

const BIN = new URL("./fixtures/stories260K/stories260K.bin", import.meta.url).pathname;
const runc = JSON.parse(readFileSync(join(REFERENCE_DIR, "stories260K.runc.json"), "utf8")) as {
  runs: { prompt: number[]; tokens: number[] }[];
};

describe("stories260K: the real llama2.c model", () => {
  const dir = mkdtempSync(join(tmpdir(), "petrel-l2c-"));
  const out = join(dir, "stories260K.gguf");

  it("petrel convert-llama2c writes the same tensors as the reference conversion", () => {
    const r = petrel("convert-llama2c", BIN, out);
    expect(r.stderr).toContain("wrote");
    expect(r.status).toBe(0);
    const ours = parseGGUF(new Uint8Array(readFileSync(out)));
    const theirs = parseGGUF(new Uint8Array(readFileSync(join(REFERENCE_DIR, "stories260K.gguf"))));
    expect(ours.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(theirs.tensors.map((t) => [t.name, t.dims, t.type]));
    for (let i = 0; i < ours.tensors.length; i++) {
      const a = ours.tensors[i]!;
      const b = theirs.tensors[i]!;
      expect(Buffer.compare(ours.bytes.subarray(a.fileOffset, a.fileOffset + a.nBytes), theirs.bytes.subarray(b.fileOffset, b.fileOffset + b.nBytes)), a.name).toBe(0);
    }
    expect(ours.metadata.get("llama.attention.head_count_kv")).toBe(4);
  });

  it("greedy ids equal llama2.c run.c for every step of both runs", () => {
    const model = loadModel(parseGGUF(new Uint8Array(readFileSync(out))), createJsBackend());
    expect(runc.runs).toHaveLength(2);
    for (const run of runc.runs) {
      const cache = model.createCache({ nCtx: 512 });
      const ours = [...generate(model, cache, { prompt: run.prompt, maxTokens: run.tokens.length })];
      expect(ours).toEqual(run.tokens);
    }
  });

  it("refuses a truncated or garbage checkpoint with a message naming the problem", () => {
    const cut = join(dir, "cut.bin");
    writeFileSync(cut, readFileSync(BIN).subarray(0, 5000));
    const r = petrel("convert-llama2c", cut, join(dir, "x.gguf"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/file ends at 5000 bytes while reading/);
    const junk = join(dir, "junk.bin");
    writeFileSync(junk, Buffer.alloc(40, 0xff));
    expect(petrel("convert-llama2c", junk, join(dir, "y.gguf")).stderr).toMatch(/not a plausible size/);
    expect(petrel("convert-llama2c", join(dir, "missing.bin"), join(dir, "z.gguf")).stderr).toMatch(/no such file/);
  });
});
