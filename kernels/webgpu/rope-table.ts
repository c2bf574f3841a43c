/**
 * cos/sin of every rotary angle a cache can need: entry (pos, i) for i < n_dims/2 is
 * θ = pos · freq_scale · freq_base^(−2i/n_dims), computed in float64 like the reference backend.
 */
import type { RopeParams } from "../model/backend.ts";

export function ropeTable(params: RopeParams, positions: number): Float32Array {
  const half = params.nDims / 2;
  const table = new Float32Array(positions * half * 2);
  for (let i = 0; i < half; i++) {
    const inverseWavelength = Math.pow(params.freqBase, (-2 * i) / params.nDims);
    for (let pos = 0; pos < positions; pos++) {
      const theta = pos * params.freqScale * inverseWavelength;
      table[2 * (pos * half + i)] = Math.cos(theta);
      table[2 * (pos * half + i) + 1] = Math.sin(theta);
    }
  }
  return table;
}
