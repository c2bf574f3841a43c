/**
 * The --backend flag of `petrel generate`, `petrel bench` and the Node origin: a CPU backend
 * (js, wasm) under the synchronous Model, or `webgpu`, the whole-model GPU runner with an
 * asynchronous forward. Without a WebGPU adapter, `webgpu` is an error naming every adapter
 * tried — never a silent fall back to a CPU backend.
 */
import { BACKEND_NAMES, createBackend } from "../../kernels/model/backends/index.ts";
import type { KVCache } from "../../kernels/model/backend.ts";
import type { ModelConfig } from "../../kernels/model/config.ts";
import { type GenerateOptions, generate } from "../../kernels/model/generate.ts";
import { type CacheOptions, Model } from "../../kernels/model/model.ts";
import { type DeviceOptions, type WebGpuDevice, WebGpuUnavailableError, requestWebGpuDevice } from "../../kernels/webgpu/device.ts";
import { generateOnGpu } from "../../kernels/webgpu/generate.ts";
import type { WebGpuKVCache } from "../../kernels/webgpu/kv-cache.ts";
import { WebGpuModel } from "../../kernels/webgpu/model.ts";
import { CliError } from "./args.ts";
import type { DiskModel } from "./io.ts";

export const COMPUTE_BACKENDS = [...BACKEND_NAMES, "webgpu"] as const;
export type ComputeBackend = (typeof COMPUTE_BACKENDS)[number];

/** The backend named by a flag value (default js), or a CliError listing the choices. */
export function computeBackend(name: string | undefined): ComputeBackend {
  const backend = name ?? "js";
  if (!(COMPUTE_BACKENDS as readonly string[]).includes(backend)) throw new CliError(`--backend must be ${COMPUTE_BACKENDS.join(", ")}, got '${backend}'`);
  return backend as ComputeBackend;
}

/** A WebGPU device for `--backend webgpu`, or a CliError that says why there is none. */
export async function openWebGpu(opts?: DeviceOptions): Promise<WebGpuDevice> {
  try {
    return await requestWebGpuDevice(opts);
  } catch (e) {
    if (!(e instanceof WebGpuUnavailableError)) throw e;
    throw new CliError(
      `--backend webgpu: ${e.message}\n(on a machine without a GPU, Mesa's CPU adapters serve: apt-get install mesa-vulkan-drivers libegl-mesa0; see .ci/webgpu-packages.txt)`,
    );
  }
}

/** A loaded model as `petrel generate` uses it, whichever backend runs it. */
export interface Generator {
  readonly config: ModelConfig;
  /** Which backend (and for webgpu, which adapter) runs the model. */
  readonly description: string;
  createCache(opts: CacheOptions): KVCache;
  generate(cache: KVCache, opts: GenerateOptions): Iterable<number> | AsyncIterable<number>;
  close(): void;
}

export async function loadGenerator(disk: DiskModel, backend: ComputeBackend, threads?: number): Promise<Generator> {
  if (backend === "webgpu") {
    const gpu = await openWebGpu();
    try {
      const model = await WebGpuModel.load(disk.header, disk.bytesOf, gpu);
      return {
        config: model.config,
        description: `webgpu (${gpu.description})`,
        createCache: (opts) => model.createCache(opts),
        // createCache above made every cache this model is handed.
        generate: (cache, opts) => generateOnGpu(model, cache as WebGpuKVCache, opts),
        close: () => {
          model.destroy();
          gpu.destroy();
        },
      };
    } catch (e) {
      gpu.destroy();
      throw e;
    }
  }
  const model = Model.load(disk.header, disk.bytesOf, await createBackend(backend, { threads }));
  return {
    config: model.config,
    description: backend,
    createCache: (opts) => model.createCache(opts),
    generate: (cache, opts) => generate(model, cache, opts),
    close: () => {},
  };
}
