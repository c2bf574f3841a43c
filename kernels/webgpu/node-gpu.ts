/// <reference types="@webgpu/types" />
/**
 * WebGPU entry points in Node, from Dawn (npm `webgpu`). Dawn's default instance looks for
 * Vulkan/Metal/D3D12 adapters; its OpenGL backend (the one that runs on Mesa's llvmpipe on a
 * machine without a GPU) is only offered when asked for by name.
 */

/** A Dawn backend: `default` is Dawn's own choice (Vulkan on Linux), `opengl` needs EGL. */
export type DawnBackend = "default" | "vulkan" | "opengl";

export async function dawnGpu(backend: DawnBackend): Promise<GPU> {
  let dawn: typeof import("webgpu");
  try {
    dawn = await import("webgpu");
  } catch (e) {
    throw new Error(`cannot load Dawn (npm package 'webgpu'): ${(e as Error).message}`);
  }
  if (backend === "opengl") {
    // Headless EGL: without this Mesa looks for an X11/Wayland display and finds no adapter.
    process.env.EGL_PLATFORM ??= "surfaceless";
  }
  return dawn.create(backend === "default" ? [] : [`backend=${backend}`]);
}
