//! A small seedable random source (SplitMix64) shared by the seeded random weights and the
//! render's noise and RoPE offsets. The same seed gives the same numbers on every machine, which
//! is what makes renders reproducible; statistical quality beyond "well mixed" is not needed.

/// SplitMix64 state.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Two seeds mixed into one, so that streams for different purposes (noise of clip r,
    /// offsets of call k) never overlap by accident.
    pub fn derived(seed: u64, stream: u64) -> Self {
        let mut mixer = Self::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let state = mixer.next_u64();
        Self { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// A uniform integer in `low..=high` (`low` when the range is empty).
    pub fn range_inclusive(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = (high - low) as u64 + 1;
        low + (self.next_u64() % span) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_streams_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = SplitMix64::derived(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let mut b = SplitMix64::derived(7, 1);
        assert!(a.iter().all(|&x| x == b.next_u64()));
        let mut c = SplitMix64::derived(7, 2);
        assert_ne!(a[0], c.next_u64());
    }

    #[test]
    fn ranges_and_normals_are_plausible() {
        let mut r = SplitMix64::new(3);
        let draws: Vec<i64> = (0..2000).map(|_| r.range_inclusive(4, 30)).collect();
        assert!(draws.iter().all(|d| (4..=30).contains(d)));
        assert!(draws.contains(&4) && draws.contains(&30));
        let normals: Vec<f32> = (0..20_000).map(|_| r.normal()).collect();
        let mean = normals.iter().sum::<f32>() / normals.len() as f32;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / normals.len() as f32;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
