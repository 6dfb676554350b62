//! Adam's element-wise kernel on plain slices, in burn's order of operations (so the fused
//! optimizer in [`super::adam`] steps exactly like burn's); [`super::flex`] runs it on flex
//! tensors.

/// Adam's step in one pass over memory: both moments, `beta * prev + (1 - beta) * g` (`g²`
/// for the second), then `p - ((m * combined) / (sqrt(v) + eps)) * lr` with the new ones.
/// Seven streams instead of the ten of a pass per moment and one for the update (the tutorial
/// net's dense layer is 42 MB a stream; its Adam went from 16 to 11 ms a step).
pub fn step(
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    betas: [f32; 2],
    factors: [f32; 3],
    [p_out, m_out, v_out]: [&mut [f32]; 3],
) {
    use rayon::prelude::*;
    let outs = p_out
        .par_chunks_mut(CHUNK)
        .zip(m_out.par_chunks_mut(CHUNK).zip(v_out.par_chunks_mut(CHUNK)));
    let ins = p
        .par_chunks(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)));
    outs.zip(ins)
        .for_each(|((po, (mo, vo)), ((p, g), (m, v)))| {
            let outs = po.iter_mut().zip(mo.iter_mut().zip(vo.iter_mut()));
            let ins = p.iter().zip(g).zip(m.iter().zip(v));
            for ((po, (mo, vo)), ((&p, &g), (&m, &v))) in outs.zip(ins) {
                (*po, *mo, *vo) = element(p, g, m, v, betas, factors);
            }
        });
}

/// [`step`] writing the new parameter and moments over the old ones (four streams, and no new
/// buffers).
pub fn step_in_place(g: &[f32], betas: [f32; 2], factors: [f32; 3], [p, m, v]: [&mut [f32]; 3]) {
    use rayon::prelude::*;
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .zip(g.par_chunks(CHUNK))
        .for_each(|((p, (m, v)), g)| {
            let pmv = p.iter_mut().zip(m.iter_mut().zip(v.iter_mut()));
            for ((p, (m, v)), &g) in pmv.zip(g) {
                (*p, *m, *v) = element(*p, g, *m, *v, betas, factors);
            }
        });
}

/// Elements per parallel job.
const CHUNK: usize = 1 << 14;

/// One element of Adam's step: the new `(parameter, first moment, second moment)`.
#[inline]
fn element(
    p: f32,
    g: f32,
    m: f32,
    v: f32,
    [beta_1, beta_2]: [f32; 2],
    [combined, eps, lr]: [f32; 3],
) -> (f32, f32, f32) {
    let m = m * beta_1 + g * (1.0 - beta_1);
    let v = v * beta_2 + (g * g) * (1.0 - beta_2);
    (p - ((m * combined) / (v.sqrt() + eps)) * lr, m, v)
}
