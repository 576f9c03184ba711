//! FP8 e4m3fn weights with one scale per tensor, as `fp8_linear.py` builds them:
//! `s = min(448 / max(max|W|, 1e-12), 448)`, `W8 = e4m3(bf16(W·s))`, stored scale `1/s`.

/// Largest finite e4m3fn magnitude.
pub const E4M3_MAX: f32 = 448.0;
/// Code of +448 (the largest finite value; `0x7f` is NaN).
const E4M3_MAX_CODE: u8 = 0x7e;

/// Decodes one e4m3fn byte.
pub fn e4m3_to_f32(code: u8) -> f32 {
    let sign = if code & 0x80 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((code >> 3) & 0x0f);
    let mantissa = f32::from(code & 0x07);
    if code & 0x7f == 0x7f {
        return f32::NAN;
    }
    let magnitude = if exponent == 0 {
        mantissa / 8.0 * 2f32.powi(-6)
    } else {
        (1.0 + mantissa / 8.0) * 2f32.powi(exponent - 7)
    };
    sign * magnitude
}

/// Rounds to the nearest e4m3fn value (ties to even), saturating at ±448.
pub fn e4m3_from_f32(value: f32) -> u8 {
    let sign = if value.is_sign_negative() { 0x80 } else { 0 };
    if value.is_nan() {
        return sign | 0x7f;
    }
    let magnitude = value.abs().min(E4M3_MAX);
    if magnitude == 0.0 {
        return sign;
    }
    let biased = ((magnitude.to_bits() >> 23) & 0xff) as i32;
    let mut exponent = (biased - 127).max(-6);
    // Values are multiples of 2^(exponent-3) in this binade (and in the subnormal range).
    let quantum = 2f64.powi(exponent - 3);
    let scaled = f64::from(magnitude) / quantum;
    let mut steps = scaled.round_ties_even() as u32;
    if steps == 16 {
        steps = 8;
        exponent += 1;
    }
    let code = if steps < 8 {
        steps as u8
    } else {
        (((exponent + 7) as u8) << 3) | (steps as u8 - 8)
    };
    sign | code.min(E4M3_MAX_CODE)
}

/// A weight quantised to e4m3fn with a per-tensor scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Fp8Weight {
    pub codes: Vec<u8>,
    /// Multiply decoded codes by this to recover the weight (`weight_scale = 1/s`).
    pub scale_inv: f32,
    pub shape: Vec<usize>,
}

impl Fp8Weight {
    /// Quantises `values` (already bf16-representable, as the reference's bf16 weights are).
    /// The scaled product is rounded to bf16 before the e4m3 cast, like the reference.
    pub fn quantize(values: &[f32], shape: Vec<usize>) -> Self {
        Self::quantize_rounding(values, shape, |v| half::bf16::from_f32(v).to_f32())
    }

    /// [`Fp8Weight::quantize`] for values of another element type: `round` gives the scaled
    /// product in that type (torch computes `x·s` in `x`'s own type).
    pub fn quantize_rounding(
        values: &[f32],
        shape: Vec<usize>,
        round: impl Fn(f32) -> f32,
    ) -> Self {
        let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = (E4M3_MAX / max_abs.max(1e-12)).min(E4M3_MAX);
        let codes = values
            .iter()
            .map(|&w| {
                let scaled = round(w * scale);
                e4m3_from_f32(scaled.clamp(-E4M3_MAX, E4M3_MAX))
            })
            .collect();
        Self {
            codes,
            scale_inv: 1.0 / scale,
            shape,
        }
    }

    /// The dequantised weight `e4m3(W8)·scale_inv`.
    pub fn dequantize(&self) -> Vec<f32> {
        self.codes
            .iter()
            .map(|&c| e4m3_to_f32(c) * self.scale_inv)
            .collect()
    }
}
