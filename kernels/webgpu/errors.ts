/// <reference types="@webgpu/types" />
/**
 * WebGPU reports validation and out-of-memory errors asynchronously, through error scopes; this
 * turns them into rejections of the work that caused them. Scopes are per device, so work on one
 * device that overlaps in time may see each other's errors (still reported, never swallowed).
 */
export async function withGpuErrors<T>(device: GPUDevice, what: string, work: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let result: T;
  try {
    result = await work();
  } catch (e) {
    await Promise.all([device.popErrorScope(), device.popErrorScope()]);
    throw e;
  }
  const validation = await device.popErrorScope();
  const outOfMemory = await device.popErrorScope();
  const error = validation ?? outOfMemory;
  if (error) throw new Error(`${what}: ${error.message}`);
  return result;
}
