/**
 * `node --import tsx tests/browser/serve.ts [port]`: serves the fixture page for a browser opened
 * by hand (e.g. on a machine with a GPU): http://localhost:PORT/?models=llama-Q4_0.gguf,… &precision=f32|f16|auto
 */
import { REFERENCE_DIR } from "../helpers/parity.ts";
import { bundlePage } from "./build.ts";
import { servePage } from "./server.ts";

const server = await servePage(await bundlePage(), REFERENCE_DIR, Number(process.argv[2] ?? 0));
process.stdout.write(`${server.url}?models=stories260K.gguf,llama-Q4_0.gguf\n`);
