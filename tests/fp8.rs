//! FP8 e4m3fn encoding and the per-tensor weight quantisation of spec §3.9.

use avatar_studio::weights::fp8::{E4M3_MAX, Fp8Weight, e4m3_from_f32, e4m3_to_f32};

#[test]
fn every_finite_code_round_trips() {
    for code in 0u8..=255 {
        let value = e4m3_to_f32(code);
        if value.is_nan() {
            assert_eq!(code & 0x7f, 0x7f);
            continue;
        }
        let back = e4m3_from_f32(value);
        // +0 and -0 keep their sign bit.
        assert_eq!(back, code, "code {code:#04x} value {value}");
    }
    assert_eq!(e4m3_to_f32(0x7e), E4M3_MAX);
    assert_eq!(e4m3_to_f32(0x01), 2f32.powi(-9));
}

#[test]
fn rounding_is_to_nearest_even_and_saturates() {
    let codes: Vec<(u8, f32)> = (0u8..0x7f).map(|c| (c, e4m3_to_f32(c))).collect();
    for pair in codes.windows(2) {
        let ((lo_code, lo), (hi_code, hi)) = (pair[0], pair[1]);
        let mid = (lo + hi) / 2.0;
        let even = if lo_code % 2 == 0 { lo_code } else { hi_code };
        assert_eq!(e4m3_from_f32(mid), even, "tie between {lo} and {hi}");
        assert_eq!(e4m3_from_f32(lo + (hi - lo) * 0.25), lo_code);
        assert_eq!(e4m3_from_f32(lo + (hi - lo) * 0.75), hi_code);
    }
    assert_eq!(e4m3_from_f32(1e6), 0x7e);
    assert_eq!(e4m3_from_f32(-1e6), 0xfe);
}

#[test]
fn per_tensor_quantisation_uses_the_max_scale() {
    let values: Vec<f32> = (0..64).map(|i| ((i as f32) - 31.5) / 7.0).collect();
    let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let q = Fp8Weight::quantize(&values, vec![8, 8]);
    assert_eq!(q.scale_inv, 1.0 / (E4M3_MAX / max_abs));
    let restored = q.dequantize();
    // The largest magnitude maps onto ±448 exactly.
    let peak = restored.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!((peak - max_abs).abs() <= max_abs * 1e-6);
    for (a, b) in restored.iter().zip(&values) {
        // e4m3 keeps 3 mantissa bits: relative error at most 2^-4 (plus the bf16 step).
        assert!(
            (a - b).abs() <= b.abs() * 0.0625 + 2f32.powi(-9) * q.scale_inv,
            "{a} vs {b}"
        );
    }
}
