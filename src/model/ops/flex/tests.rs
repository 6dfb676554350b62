use super::*;

fn flat(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// A big element-wise output is written into a buffer kept from an earlier step once that
/// one is dropped, and every element is the new value (none left from the old one).
#[test]
fn a_big_element_wise_output_reuses_a_dropped_buffer_and_overwrites_it() {
    // A length no other test asks for, since tests share the pool.
    let n = RECYCLED_ELEMENTS + 37;
    let a = flat((0..n).map(|i| (i % 11) as f32).collect());
    let b = flat((0..n).map(|i| (i % 5) as f32 - 2.0).collect());
    let mix = |k: f32| {
        elementwise([&a, &b], "test", |[a, b], out| {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = a * k + b;
            }
        })
    };
    let first = mix(0.9);
    let ptr = first.bytes().as_ptr();
    drop(first);
    let second = mix(0.5);
    assert_eq!(second.bytes().as_ptr(), ptr, "the dropped buffer is reused");
    let (av, bv) = (values(&a), values(&b));
    for (i, &got) in values(&second).iter().enumerate() {
        let want = av[i] * 0.5 + bv[i];
        assert_eq!(got.to_bits(), want.to_bits(), "element {i}");
    }
    // Held, it is not handed out again.
    let third = mix(0.9);
    assert_ne!(third.bytes().as_ptr(), ptr);
    assert_eq!(values(&second).len(), n);
}

/// Adam's step on new handles of `[p, g, m, v]`: the caller keeps its own, so the step
/// cannot write in place.
fn adam_step_on_copies(
    [p, g, m, v]: [&FlexTensor; 4],
    betas: [f32; 2],
    factors: [f32; 3],
) -> (FlexTensor, FlexTensor, FlexTensor) {
    <Flex as FastOps>::fast_adam_step(p.clone(), g.clone(), m.clone(), v.clone(), betas, factors)
}

/// Given the only handles (the pool's aside), Adam's step writes over the parameter and
/// moments, with the same numbers as into new buffers.
#[test]
fn adam_step_writes_in_place_when_nothing_else_holds_the_tensors() {
    let n = RECYCLED_ELEMENTS + 71;
    let make = |k: usize| flat((0..n).map(|i| ((i * k) % 19) as f32 * 0.1 - 0.9).collect());
    // The parameter as the pool hands it out (it keeps a handle of its own).
    let p = recycle::output([n], |s| {
        s.copy_from_slice(values(&make(3)));
    });
    let (g, m) = (make(5), make(7));
    let v = flat((0..n).map(|i| (i % 23) as f32 * 0.01).collect());
    let (betas, factors) = ([0.9, 0.999], [0.7, 1e-7, 1e-3]);
    // Into new buffers, while copies are held ...
    let (p_new, m_new, v_new) = adam_step_on_copies([&p, &g, &m, &v], betas, factors);
    // ... then over the old ones, once nothing else holds them.
    let ptrs = [&p, &m, &v].map(|t| t.bytes().as_ptr());
    let (p_in, m_in, v_in) = <Flex as FastOps>::fast_adam_step(p, g, m, v, betas, factors);
    assert_eq!([&p_in, &m_in, &v_in].map(|t| t.bytes().as_ptr()), ptrs);
    for (a, b) in [(&p_in, &p_new), (&m_in, &m_new), (&v_in, &v_new)] {
        assert!(
            values(a)
                .iter()
                .zip(values(b))
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
    }
}

/// Adam's fused step: three distinct outputs, each Adam's formula to the bit, big ones
/// in buffers reused once dropped and never while held; small ones the same numbers.
#[test]
fn adam_step_gives_three_new_tensors_with_adams_numbers() {
    for n in [RECYCLED_ELEMENTS + 53, 1000] {
        let make = |k: usize| flat((0..n).map(|i| ((i * k) % 17) as f32 * 0.1 - 0.8).collect());
        let (p, g, m) = (make(3), make(5), make(7));
        // A second moment is never negative.
        let v = flat((0..n).map(|i| (i % 13) as f32 * 0.01).collect());
        let (betas, factors) = ([0.9, 0.999], [0.7, 1e-7, 1e-3]);
        let step = || adam_step_on_copies([&p, &g, &m, &v], betas, factors);
        let (p1, m1, v1) = step();
        let ptrs = [&p1, &m1, &v1].map(|t| t.bytes().as_ptr());
        assert!(ptrs[0] != ptrs[1] && ptrs[1] != ptrs[2] && ptrs[0] != ptrs[2]);
        let [pv, gv, mv, vv] = [&p, &g, &m, &v].map(values);
        for i in 0..n {
            let m_want = mv[i] * 0.9 + gv[i] * (1.0 - 0.9);
            let v_want = vv[i] * 0.999 + (gv[i] * gv[i]) * (1.0 - 0.999);
            let p_want = pv[i] - ((m_want * 0.7) / (v_want.sqrt() + 1e-7)) * 1e-3;
            assert_eq!(values(&m1)[i].to_bits(), m_want.to_bits(), "m {i}");
            assert_eq!(values(&v1)[i].to_bits(), v_want.to_bits(), "v {i}");
            assert_eq!(values(&p1)[i].to_bits(), p_want.to_bits(), "p {i}");
        }
        if n > RECYCLED_ELEMENTS {
            let (p2, m2, v2) = step();
            let held = [&p2, &m2, &v2].map(|t| t.bytes().as_ptr());
            assert!(
                held.iter().all(|h| !ptrs.contains(h)),
                "held buffers are not reused"
            );
            drop((p1, m1, v1));
            let (p3, m3, v3) = step();
            let again = [&p3, &m3, &v3].map(|t| t.bytes().as_ptr());
            assert!(
                again.iter().all(|a| ptrs.contains(a)),
                "dropped buffers are reused"
            );
            assert_eq!(values(&p3), values(&p2));
        }
    }
}
