/**
 * The fixture protocol of tests/helpers/parity-rule.ts (runFixture) for the WebGPU model, whose
 * forward is asynchronous. Shared by the Node test and the browser page, so both run the same code.
 */
import { argmax } from "../../kernels/model/generate.ts";
import type { WebGpuModel } from "../../kernels/webgpu/model.ts";
import type { ReferenceRun, RunOutput } from "../helpers/parity-rule.ts";

/** Teacher-forced rows one token at a time, then our own greedy continuation (as runFixture). */
export async function runFixtureOnGpu(model: WebGpuModel, run: ReferenceRun): Promise<RunOutput> {
  const steps = run.tokens.length;
  const nCtx = run.prompt.length + steps + 1;
  const forced = model.createCache({ nCtx });
  const forcedRows = [await model.forward(forced, run.prompt)];
  for (let s = 0; s + 1 < steps; s++) forcedRows.push(await model.forward(forced, [run.tokens[s]!]));
  forced.destroy();

  // Greedy equals the forced rows while our argmax agrees with the forced tokens; past the
  // first disagreement it decodes on its own.
  const greedy: number[] = [];
  while (greedy.length < steps && (greedy.length === 0 || greedy.at(-1) === run.tokens[greedy.length - 1])) {
    greedy.push(argmax(forcedRows[greedy.length]!));
  }
  if (greedy.length < steps) {
    const cache = model.createCache({ nCtx });
    let logits = await model.forward(cache, [...run.prompt, ...greedy]);
    while (greedy.length < steps) {
      greedy.push(argmax(logits));
      if (greedy.length < steps) logits = await model.forward(cache, [greedy.at(-1)!]);
    }
    cache.destroy();
  }
  return { forcedRows, greedy };
}
