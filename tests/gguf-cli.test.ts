/** `petrel inspect`, run as a user runs it: the real executable on a fixture model and on bad input. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { typeName } from "../kernels/gguf/types.ts";
import { petrel } from "./helpers/cli.ts";
import { readModel, REFERENCE_MODELS } from "./helpers/gguf-samples.ts";

const MODEL = "llama-Q4_K_M.gguf";
const path = REFERENCE_MODELS + MODEL;
const file = parseGGUF(readModel(MODEL));
const tmp = mkdtempSync(join(tmpdir(), "petrel-inspect-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Exit status 1 and exactly one line on stderr, the dispatcher's `petrel inspect: …`. */
function expectOneLineError(args: string[], message: RegExp): void {
  const r = petrel("inspect", ...args);
  expect(r.status).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr).toMatch(/^petrel inspect: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
}

describe("petrel inspect", () => {
  it("prints metadata, long arrays summarized, tensors and totals", () => {
    const r = petrel("inspect", path);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(`${path}: GGUF v3, ${file.fileSize.toLocaleString("en-US")} bytes, alignment 32, tensor data at ${file.dataOffset.toLocaleString("en-US")}`);
    expect(r.stdout).toContain(`metadata (${file.metadata.size} keys)`);
    expect(r.stdout).toMatch(/general\.architecture +string +"llama"/);
    expect(r.stdout).toMatch(/layer_norm_rms_epsilon +float32 +0\.00001\n/);
    expect(r.stdout).toMatch(/tokenizer\.ggml\.tokens +array +string\[512\] \["<unk>", "<s>", "<\/s>", .*, …\]/);
    expect(r.stdout).toContain(`tensors (${file.tensors.length})`);
    for (const t of file.tensors) {
      const row = new RegExp(`\\n  ${t.name.replace(/\./g, "\\.")} +${t.dims.join(" × ")} +${typeName(t.type)} +${t.nBytes.toLocaleString("en-US")} +${t.fileOffset.toLocaleString("en-US")}\\n`);
      expect(r.stdout).toMatch(row);
    }
    const bytes = file.tensors.reduce((a, t) => a + t.nBytes, 0);
    const elements = file.tensors.reduce((a, t) => a + t.nElements, 0);
    expect(r.stdout).toContain(`total: ${file.tensors.length} tensors, ${elements.toLocaleString("en-US")} elements, ${bytes.toLocaleString("en-US")} bytes`);
    expect(r.stdout).toMatch(/\n {2}Q4_K: \d+ tensors/);
  });

  it("--json gives the same facts as the reader", () => {
    const r = petrel("inspect", path, "--json");
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ file: path, size: file.fileSize, version: 3, alignment: 32, dataOffset: file.dataOffset });
    expect(report.tensors).toEqual(file.tensors.map((t) => ({ name: t.name, dims: t.dims, type: typeName(t.type), bytes: t.nBytes, offset: t.fileOffset })));
    expect(report.metadata.map((m: { key: string }) => m.key)).toEqual([...file.metadata.keys()]);
    const tokens = report.metadata.find((m: { key: string }) => m.key === "tokenizer.ggml.tokens");
    const vocab = file.metadata.get("tokenizer.ggml.tokens") as string[];
    expect(tokens).toEqual({ key: "tokenizer.ggml.tokens", type: "array", value: { elementType: "string", length: vocab.length, values: vocab.slice(0, 8) } });
    expect(report.totals.tensors).toBe(file.tensors.length);
    expect(Object.values(report.totals.byType as Record<string, { bytes: number }>).reduce((a, t) => a + t.bytes, 0)).toBe(report.totals.bytes);
  });

  it("fails with one clear line on a missing file, a non-GGUF file, a truncated one, or bad arguments", () => {
    expectOneLineError([join(tmp, "missing.gguf")], /no such file: .*missing\.gguf/);
    const text = join(tmp, "notes.txt");
    writeFileSync(text, "hello, not a model\n");
    expectOneLineError([text], /notes\.txt: GGUF: magic at offset 0: not a GGUF file/);
    const truncated = join(tmp, "truncated.gguf");
    writeFileSync(truncated, readModel(MODEL).subarray(0, 5000));
    expectOneLineError([truncated], /truncated\.gguf: GGUF: .* needs \d+ bytes but the file ends at 5000/);
    expectOneLineError([tmp], /is not a file/);
    expectOneLineError([], /usage: petrel inspect FILE \[--json\]/);
    expectOneLineError([path, "--yaml=1"], /unknown option --yaml/);
  });
});
