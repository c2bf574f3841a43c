/** How a WGSL reader of one GGUF block type is described (see blocks.ts). */
export interface BlockReader {
  blockSize: number;
  blockBytes: number;
  /** Body of load4: sees blk (first byte of the block) and e (element index in it, e % 4 == 0); returns vec4<f32>. */
  load4: string;
  /** Body of load32: sees blk and e (e % 32 == 0); fills `v: array<vec4<f32>, 8>` with elements e…e+31,
   *  decoding the shared scales once. */
  load32: string;
}
