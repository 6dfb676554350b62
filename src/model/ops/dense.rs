//! The dense layer's products on flex through faer, as the convolutions' are: `y = x · W + b`,
//! and its backward `dx = dy · Wᵀ`, `dW = xᵀ · dy`, `db = Σ dy` (row-major `x [m, k]`,
//! `W [k, n]`, `y [m, n]`). For the tutorial net's first dense layer (64 × 20,736 · 20,736 × 512)
//! faer's AVX-512 kernels, split over the rayon threads, are the fastest this crate has.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `[m, k]`, `[k, n]`: the shapes of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

fn par() -> Par {
    Par::rayon(0)
}

/// `y = x · W + b` (`b` added to every row).
pub fn forward(s: Shape, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), s.m * s.k, "dense: input length");
    assert_eq!(w.len(), s.k * s.n, "dense: weight length");
    assert_eq!(b.len(), s.n, "dense: bias length");
    assert_eq!(y.len(), s.m * s.n, "dense: output length");
    for row in y.chunks_exact_mut(s.n.max(1)) {
        row.copy_from_slice(b);
    }
    matmul(
        MatMut::from_row_major_slice_mut(y, s.m, s.n),
        Accum::Add,
        MatRef::from_row_major_slice(x, s.m, s.k),
        MatRef::from_row_major_slice(w, s.k, s.n),
        1.0,
        par(),
    );
}

/// `dx = dy · Wᵀ`, computed as `dxᵀ = W · dyᵀ` (the same memory read column-major): faer
/// then streams `W` as its left-hand side, 7.3-7.5 ms against 8.0-10.1 for the row-major
/// form at 64 × 512 · 512 × 20,736 on 2 threads of the development machine.
pub fn backward_x(s: Shape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    matmul(
        MatMut::from_column_major_slice_mut(dx, s.k, s.m),
        Accum::Replace,
        MatRef::from_row_major_slice(w, s.k, s.n),
        MatRef::from_row_major_slice(dy, s.m, s.n).transpose(),
        1.0,
        par(),
    );
}

/// `dW = xᵀ · dy`.
pub fn backward_w(s: Shape, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    matmul(
        MatMut::from_row_major_slice_mut(dw, s.k, s.n),
        Accum::Replace,
        MatRef::from_row_major_slice(x, s.m, s.k).transpose(),
        MatRef::from_row_major_slice(dy, s.m, s.n),
        1.0,
        par(),
    );
}

/// `db = Σ_rows dy`, the rows added in order.
#[must_use]
pub fn backward_b(s: Shape, dy: &[f32]) -> Vec<f32> {
    let mut db = vec![0.0; s.n];
    for row in dy.chunks_exact(s.n.max(1)) {
        for (d, &v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
    db
}
