//! Adam's element-wise kernels on plain slices, in burn's order of operations (so the fused
//! optimizer in [`super::adam`] steps exactly like burn's); [`super::flex`] runs them on flex
//! tensors.

/// `beta * prev + (1 - beta) * g` (or `g²`), in burn's order of operations.
pub fn ema(prev: &[f32], g: &[f32], beta: f32, square: bool, out: &mut [f32]) {
    use rayon::prelude::*;
    let factor = 1.0 - beta;
    out.par_chunks_mut(1 << 14)
        .zip(prev.par_chunks(1 << 14).zip(g.par_chunks(1 << 14)))
        .for_each(|(o, (p, g))| {
            for ((o, &p), &g) in o.iter_mut().zip(p).zip(g) {
                let g = if square { g * g } else { g };
                *o = p * beta + g * factor;
            }
        });
}

/// `p - ((m * combined) / (sqrt(v) + eps)) * lr`, in burn's order of operations.
pub fn apply(p: &[f32], m: &[f32], v: &[f32], [combined, eps, lr]: [f32; 3], out: &mut [f32]) {
    use rayon::prelude::*;
    out.par_chunks_mut(1 << 14)
        .zip(p.par_chunks(1 << 14))
        .zip(m.par_chunks(1 << 14).zip(v.par_chunks(1 << 14)))
        .for_each(|((o, p), (m, v))| {
            for (((o, &p), &m), &v) in o.iter_mut().zip(p).zip(m).zip(v) {
                *o = p - ((m * combined) / (v.sqrt() + eps)) * lr;
            }
        });
}
