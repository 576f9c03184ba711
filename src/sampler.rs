//! Flow-matching Euler sampler: the shifted sigma / timestep schedule of diffusers'
//! `FlowMatchEulerDiscreteScheduler` (shift applied at construction and again per schedule)
//! and the Euler update `x ← x + (σ_{i+1} − σ_i)·v`.

use burn::tensor::{Tensor, backend::Backend};

/// A schedule for `steps` denoising steps.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowMatchSchedule {
    /// `steps + 1` sigmas, the last one 0.
    pub sigmas: Vec<f32>,
    /// `steps` timesteps fed to the DiT (`σ·train_steps`).
    pub timesteps: Vec<f32>,
}

fn shifted(sigma: f64, shift: f64) -> f64 {
    shift * sigma / (1.0 + (shift - 1.0) * sigma)
}

impl FlowMatchSchedule {
    /// Builds the schedule. The smallest training sigma is computed in f32 like the
    /// scheduler's training table; the linspace and the second shift run in f64.
    pub fn new(steps: usize, train_steps: usize, shift: f64) -> Self {
        let shift_f32 = shift as f32;
        let s_min = 1.0f32 / train_steps as f32;
        let sigma_min = f64::from(shift_f32 * s_min / (1.0 + (shift_f32 - 1.0) * s_min));
        let sigma_max = f64::from(shift_f32 * 1.0 / (1.0 + (shift_f32 - 1.0) * 1.0));
        let train = train_steps as f64;
        let (start, stop) = (sigma_max * train, sigma_min * train);
        let mut sigmas: Vec<f32> = (0..steps)
            .map(|i| {
                let t = if steps == 1 {
                    start
                } else if i == steps - 1 {
                    stop
                } else {
                    start + i as f64 * ((stop - start) / (steps - 1) as f64)
                };
                shifted(t / train, shift) as f32
            })
            .collect();
        let timesteps = sigmas.iter().map(|&s| s * train_steps as f32).collect();
        sigmas.push(0.0);
        Self { sigmas, timesteps }
    }

    /// The scheduler's training sigmas for `k = train_steps..1`, computed in f32.
    pub fn training_sigmas(train_steps: usize, shift: f64) -> Vec<f32> {
        let shift = shift as f32;
        (1..=train_steps)
            .rev()
            .map(|k| {
                let s = (k as f64 / train_steps as f64) as f32;
                shift * s / (1.0 + (shift - 1.0) * s)
            })
            .collect()
    }

    /// The LiveAvatar setting: 1000 training steps, shift 3.
    pub fn liveavatar(steps: usize) -> Self {
        Self::new(steps, 1000, 3.0)
    }

    pub fn steps(&self) -> usize {
        self.timesteps.len()
    }

    /// Euler update from step `step` to `step + 1`.
    pub fn euler_step<B: Backend, const D: usize>(
        &self,
        step: usize,
        sample: Tensor<B, D>,
        velocity: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let dt = self.sigmas[step + 1] - self.sigmas[step];
        sample + velocity.mul_scalar(dt)
    }
}
