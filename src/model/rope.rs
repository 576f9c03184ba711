//! 3-way 3D rotary position embedding (temporal / height / width) with the reference's
//! position sampling (`rope_precompute`) and its optional fp16 rounding of cos / sin.

use burn::tensor::{Tensor, TensorData, backend::Backend};

/// One token group: `[start, end, range]` over (frame, height, width), as in `rope_precompute`.
/// Positions along each axis are `int(linspace(start, start + range - 1, end - start))`;
/// a negative temporal start mirrors the frame axis to negative positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RopeGroup {
    pub start: [i64; 3],
    pub end: [i64; 3],
    pub range: [i64; 3],
}

impl RopeGroup {
    /// Shifts the temporal start and end by `frames` (`rollout_grid_sizes`).
    pub fn rolled(mut self, frames: i64) -> Self {
        self.start[0] += frames;
        self.end[0] += frames;
        self
    }

    pub fn token_count(&self) -> usize {
        (0..3)
            .map(|a| (self.end[a] - self.start[a]).max(0) as usize)
            .product()
    }

    /// Per-token `(t, h, w)` positions, frame-major then row then column.
    pub fn positions(&self) -> Vec<[i64; 3]> {
        let counts: Vec<usize> = (0..3)
            .map(|a| (self.end[a] - self.start[a]).max(0) as usize)
            .collect();
        if counts.contains(&0) {
            return Vec::new();
        }
        let frames: Vec<i64> = if self.start[0] >= 0 {
            numpy_linspace_int(self.start[0], self.start[0] + self.range[0] - 1, counts[0])
        } else {
            numpy_linspace_int(
                -self.start[0],
                -self.range[0] - self.start[0] + 1,
                counts[0],
            )
            .into_iter()
            .map(|p| -p)
            .collect()
        };
        let rows = numpy_linspace_int(self.start[1], self.start[1] + self.range[1] - 1, counts[1]);
        let cols = numpy_linspace_int(self.start[2], self.start[2] + self.range[2] - 1, counts[2]);
        let mut out = Vec::with_capacity(counts.iter().product());
        for &t in &frames {
            for &h in &rows {
                for &w in &cols {
                    out.push([t, h, w]);
                }
            }
        }
        out
    }
}

/// `numpy.linspace(start, stop, num).astype(int)`, reproducing numpy's float64 arithmetic
/// (`i·step + start`, last element forced to `stop`) and truncation toward zero.
pub fn numpy_linspace_int(start: i64, stop: i64, num: usize) -> Vec<i64> {
    match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let (a, b) = (start as f64, stop as f64);
            let step = (b - a) / (num - 1) as f64;
            (0..num)
                .map(|i| {
                    let value = if i == num - 1 { b } else { i as f64 * step + a };
                    value.trunc() as i64
                })
                .collect()
        }
    }
}

/// Pair counts per axis for a head dimension: `[c - 2(c/3), c/3, c/3]` with `c = head_dim/2`.
pub fn axis_pairs(head_dim: usize) -> [usize; 3] {
    let c = head_dim / 2;
    [c - 2 * (c / 3), c / 3, c / 3]
}

/// cos / sin multipliers for a token sequence, `[tokens, head_dim/2]` each.
#[derive(Debug, Clone)]
pub struct RopeTable<B: Backend> {
    pub cos: Tensor<B, 2>,
    pub sin: Tensor<B, 2>,
}

/// Host-side cos / sin values, `[tokens][pairs]` flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeValues {
    pub tokens: usize,
    pub pairs: usize,
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

/// Computes the multipliers of `groups` (concatenated in order). Angles are `p·10000^(-2k/D)`
/// in f64 with `D` the axis' channel count; with `round_fp16` cos and sin are rounded to f16
/// like the reference's complex-half buffer.
pub fn rope_values(groups: &[RopeGroup], head_dim: usize, round_fp16: bool) -> RopeValues {
    let pairs_per_axis = axis_pairs(head_dim);
    let pairs = head_dim / 2;
    let inverse_frequencies: Vec<Vec<f64>> = pairs_per_axis
        .iter()
        .map(|&n| {
            let axis_dim = (2 * n) as f64;
            (0..n)
                .map(|k| 1.0 / 10000f64.powf((2 * k) as f64 / axis_dim))
                .collect()
        })
        .collect();
    let positions: Vec<[i64; 3]> = groups.iter().flat_map(|g| g.positions()).collect();
    let mut cos = Vec::with_capacity(positions.len() * pairs);
    let mut sin = Vec::with_capacity(positions.len() * pairs);
    for position in &positions {
        for (axis, inverse) in inverse_frequencies.iter().enumerate() {
            // The reference looks up |p| in its table and conjugates for negative starts,
            // which equals evaluating the angle at the signed position.
            let p = position[axis] as f64;
            for &w in inverse {
                let angle = p.abs() * w;
                let (s, c) = angle.sin_cos();
                let s = if p < 0.0 { -s } else { s };
                if round_fp16 {
                    cos.push(half::f16::from_f64(c).to_f32());
                    sin.push(half::f16::from_f64(s).to_f32());
                } else {
                    cos.push(c as f32);
                    sin.push(s as f32);
                }
            }
        }
    }
    RopeValues {
        tokens: positions.len(),
        pairs,
        cos,
        sin,
    }
}

impl<B: Backend> RopeTable<B> {
    pub fn new(
        groups: &[RopeGroup],
        head_dim: usize,
        round_fp16: bool,
        device: &B::Device,
    ) -> Self {
        let values = rope_values(groups, head_dim, round_fp16);
        let shape = [values.tokens, values.pairs];
        Self {
            cos: Tensor::from_data(TensorData::new(values.cos, shape), device),
            sin: Tensor::from_data(TensorData::new(values.sin, shape), device),
        }
    }

    pub fn len(&self) -> usize {
        self.cos.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rotates interleaved channel pairs `(2k, 2k+1)` of `x` (`[tokens, heads, head_dim]`).
    pub fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        crate::kernels::hot_ops::<B>().rope(x, &self.cos, &self.sin)
    }
}
