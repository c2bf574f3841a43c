/**
 * WebGPU's flag values (from the specification). Written out here because Node has no
 * GPUBufferUsage / GPUShaderStage / GPUMapMode globals unless Dawn's are copied onto globalThis,
 * which this backend does not do.
 */
export const BufferUsage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

export const SHADER_STAGE_COMPUTE = 0x4;
export const MAP_MODE_READ = 0x1;
