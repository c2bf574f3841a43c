/**
 * The scale searches of ggml's K-quant reference quantizers (make_qx_quants, make_q3_quants,
 * make_qkx2_quants), in the forms those quantizers call them, with ggml's float32 operation
 * order (see f32-math.ts): a different rounding anywhere picks a different scale.
 */
import * as c32 from "./f32-math.ts";

// Local copies: under tsx and vitest an imported binding is a getter call on every use, too slow for
// per-element code (bundlers for Workers inline them anyway).
const { clamp, f, nearestInt, signedAbsMax } = c32;

/** Below this largest |x| ggml treats a group as all zeros. */
export const GROUP_MAX_EPS = f(1e-15);
const TENTH = f(0.1);

/**
 * Symmetric quantization of x[at..at+n) to L ∈ [0, 2·nmax) (stored with +nmax bias): tries 19
 * scales around nmax/max and keeps the one maximizing (Σw·x·l)²/Σw·l², weights w = x²
 * (make_qx_quants with rmse_type 1 and no importance weights). Returns the scale.
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, at: number, L: Int8Array): number {
  const max = signedAbsMax(x, at, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, at, at + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = at; i < at + n; i++) {
    const xi = x[i]!;
    const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
    L[i] = l + nmax;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 !== 0 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(TENTH * is)) / max);
    sumlx = suml2 = 0;
    for (let i = at; i < at + n; i++) {
      const xi = x[i]!;
      const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = at; i < at + n; i++) L[i] = nmax + clamp(nearestInt(f(iscale * x[i]!)), -nmax, nmax - 1);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * Symmetric 3-bit-style quantization with iterative refinement: starting from nmax/max, moves
 * single quants while that improves (Σw·x·l)²/Σw·l², w = x², up to 5 passes
 * (make_q3_quants with do_rmse). L gets l + nmax. Returns the scale.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, at: number, L: Int8Array): number {
  const max = signedAbsMax(x, at, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, at, at + n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = at; i < at + n; i++) {
    const xi = x[i]!;
    const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
    L[i] = l;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (let i = at; i < at + n; i++) {
      const xi = x[i]!;
      const li = L[i]!;
      const w = f(xi * xi);
      let slx = f(sumlx - f(f(w * xi) * li));
      if (!(slx > 0)) continue;
      let sl2 = f(suml2 - f(f(w * li) * li));
      const newL = clamp(nearestInt(f(f(xi * sl2) / slx)), -nmax, nmax - 1);
      if (newL === li) continue;
      slx = f(slx + f(f(w * xi) * newL));
      sl2 = f(sl2 + f(f(w * newL) * newL));
      if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
        L[i] = newL;
        sumlx = slx;
        suml2 = sl2;
        changed++;
      }
    }
    if (!changed) break;
  }
  for (let i = at; i < at + n; i++) L[i] = L[i]! + nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/** Parameters of the scale/min grid search of make_qkx2_quants; rmin and rdelta are float32 values (C floats). */
export interface Qkx2Search {
  nmax: number;
  rmin: number;
  rdelta: number;
  nstep: number;
  /** Minimize Σw·|err| rather than Σw·err². */
  useMad: boolean;
}

/**
 * Asymmetric quantization x ≈ scale·L − min with L ∈ [0, nmax]: tries nstep+1 scales around
 * nmax/(max − min), fitting scale and min by weighted least squares for each, and keeps the one
 * with the least weighted error (make_qkx2_quants). L gets the quants, mins[mi] the (positive) min;
 * `aux` is scratch of n bytes. Returns the scale.
 */
export function makeQkx2Quants(
  n: number, x: Float32Array, at: number, weights: Float32Array, L: Uint8Array,
  mins: Float32Array, mi: number, aux: Uint8Array, p: Qkx2Search,
): number {
  let min = x[at]!;
  let max = x[at]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[at]!);
  for (let i = 1; i < n; i++) {
    const xi = x[at + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, at, at + n);
    mins[mi] = -min;
    return 0;
  }
  let iscale = f(p.nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[at + i]!;
    const l = clamp(nearestInt(f(iscale * f(xi - min))), 0, p.nmax);
    L[at + i] = l;
    const diff = f(f(f(scale * l) + min) - xi);
    bestError = f(bestError + f(weights[i]! * (p.useMad ? Math.abs(diff) : f(diff * diff))));
  }
  for (let is = 0; is <= p.nstep; is++) {
    // As in ggml, `min` is the best fit so far, not the data's minimum.
    iscale = f(f(f(p.rmin + f(p.rdelta * is)) + p.nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[at + i]!;
      const l = clamp(nearestInt(f(iscale * f(xi - min))), 0, p.nmax);
      aux[i] = l;
      const wl = f(weights[i]! * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * xi));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
    let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f(sumXL / sumL2);
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      const diff = f(f(f(thisScale * aux[i]!) + thisMin) - x[at + i]!);
      error = f(error + f(weights[i]! * (p.useMad ? Math.abs(diff) : f(diff * diff))));
    }
    if (error < bestError) {
      for (let i = 0; i < n; i++) L[at + i] = aux[i]!;
      bestError = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  mins[mi] = -min;
  return scale;
}
