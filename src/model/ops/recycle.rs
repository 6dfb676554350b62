//! Output buffers kept between training steps, so big tensors are not page-faulted in afresh.
//!
//! glibc hands every allocation above its mmap threshold (at most 32 MiB) straight back to the
//! kernel when freed, so each step's 10-90 MB activations and gradients are faulted in again page
//! by page, which costs as much as computing them. The pool keeps a handle to each output it
//! handed out; once burn has dropped all its handles (the pool's is the only one left), the
//! next request for the same shape writes into that buffer instead of allocating.

use std::sync::{Mutex, PoisonError};

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape};

/// Buffers kept at most; a step of the tutorial net hands out eight from its convolutions and
/// four from dropout's element-wise ops ([`outputs_shaped`]); Adam writes in place (see
/// [`take_if_sole`]), and only when something else holds its tensors, two per output. An
/// epoch adds the shapes of its last, smaller batch and of validation's chunks: with room for
/// 32, those pushed the full batch's buffers out and every epoch made them afresh (on the
/// development machine, `bench --end-to-end`: epochs of 1.07–1.11 s at 32, 1.00–1.03 s at 64,
/// and a lower peak RSS, 730 against 773–820 MiB). `MAX_BYTES` bounds the memory either way.
const MAX_BUFFERS: usize = 64;
/// Bytes kept at most, so a large batch cannot pin unbounded memory.
const MAX_BYTES: usize = 1 << 30;

static POOL: Mutex<Vec<FlexTensor>> = Mutex::new(Vec::new());

fn bytes(t: &FlexTensor) -> usize {
    t.layout().shape().num_elements() * 4
}

/// A contiguous `f32` tensor of `shape` filled by `fill`, reusing a free pooled buffer when one
/// fits; `fill` gets arbitrary old values and must write every element it means to keep.
pub(crate) fn output<const D: usize>(
    shape: [usize; D],
    fill: impl FnOnce(&mut [f32]),
) -> FlexTensor {
    let [t] = outputs_shaped(&Shape::new(shape), |[out]| fill(out));
    t
}

/// Whether nothing but the pool holds the buffers of `tensors` besides the tensors themselves.
/// If so, the pool forgets them (it will not hand them out again), so that an op given the
/// tensors may write into them in place; if not, the pool keeps its handles.
pub(crate) fn take_if_sole(tensors: &[&FlexTensor]) -> bool {
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let pooled: Vec<bool> = tensors
        .iter()
        .map(|t| {
            let ptr = t.bytes().as_ptr();
            let before = pool.len();
            pool.retain(|p| p.bytes().as_ptr() != ptr);
            pool.len() < before
        })
        .collect();
    let sole = tensors.iter().all(|t| t.is_unique());
    if !sole {
        // A handle of the tensor's own is as good as the pool's old one.
        let back = tensors.iter().zip(pooled).filter(|(_, p)| *p);
        pool.extend(back.map(|(t, _)| (*t).clone()));
    }
    sole
}

/// `N` tensors of `shape` filled together by `fill` (one pass writing several outputs), each
/// in a free pooled buffer when one fits; `fill` gets arbitrary old values and must write every
/// element it means to keep.
pub(crate) fn outputs_shaped<const N: usize>(
    shape: &Shape,
    fill: impl FnOnce([&mut [f32]; N]),
) -> [FlexTensor; N] {
    let reused: [Option<FlexTensor>; N] = {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the pool's handle left means burn has dropped the tensor.
        std::array::from_fn(|_| {
            let free = pool.iter().position(|t| {
                t.is_unique() && t.dtype() == DType::F32 && t.layout().shape() == shape
            });
            free.map(|i| pool.remove(i))
        })
    };
    // Not `FlexTensor::zeros`: burn-flex 0.22 makes that from a `Vec<u8>`, whose alignment
    // (1) is below what its byte buffers require (16), so every new buffer was allocated
    // twice and copied once (two sets of page faults for one buffer). An `f32` vector is
    // allocated once.
    let mut ts = reused
        .map(|t| t.unwrap_or_else(|| FlexTensor::filled_typed(shape.clone(), DType::F32, 0.0f32)));
    fill(ts.each_mut().map(|t| {
        t.try_storage_mut::<f32>()
            .expect("a pooled buffer with no other handle, or a fresh one")
    }));
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    pool.extend(ts.iter().cloned());
    // Drop the oldest buffers beyond the limits (most recently used stay at the back).
    while pool.len() > MAX_BUFFERS || pool.iter().map(bytes).sum::<usize>() > MAX_BYTES {
        pool.remove(0);
    }
    ts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(t: &FlexTensor) -> f32 {
        t.as_slice::<f32>().expect("f32")[0]
    }

    #[test]
    fn dropped_buffer_is_reused_and_held_one_is_not() {
        // An odd shape no other test asks for, since tests share the pool.
        let shape = [7, 11, 13, 3];
        let held = output(shape, |s| s.fill(1.0));
        let second = output(shape, |s| {
            assert!(
                s.iter().all(|&v| v == 0.0),
                "a held buffer must not be handed out"
            );
            s.fill(2.0);
        });
        assert!((first(&held) - 1.0).abs() < f32::EPSILON);
        let ptr = second.bytes().as_ptr();
        drop(second);
        let third = output(shape, |s| s.fill(3.0));
        assert_eq!(third.bytes().as_ptr(), ptr, "the dropped buffer is reused");
        assert!((first(&held) - 1.0).abs() < f32::EPSILON);
    }
}
