//! The flow-matching schedule and Euler chain against the diffusers scheduler fixtures.

mod common;

use avatar_studio::sampler::FlowMatchSchedule;
use common::*;

/// Training steps and shift, recovered from the fixture's training sigma table:
/// `σ = a·s / (1 + (a−1)·s)` with `s = 1/N` for the last entry.
fn scheduler_parameters(train_sigmas: &[f32]) -> (usize, f64) {
    let n = train_sigmas.len();
    let s = 1.0 / n as f64;
    let sigma = f64::from(train_sigmas[n - 1]);
    let shift = sigma * (1.0 - s) / (s * (1.0 - sigma));
    (n, (shift * 1e4).round() / 1e4)
}

#[test]
fn schedule_tables_are_bit_exact() {
    let file = open("sampler/sampler.safetensors");
    let manifest = manifest();
    let (train_steps, shift) = scheduler_parameters(&floats(&file, "train_sigmas"));
    let train = FlowMatchSchedule::training_sigmas(train_steps, shift);
    assert_eq!(train, floats(&file, "train_sigmas"), "training sigmas");
    let tables = manifest["components"]["sampler"]["tables"]
        .as_object()
        .expect("manifest sampler.tables");
    assert!(!tables.is_empty());
    for steps in tables.keys() {
        let n: usize = steps.parse().expect("step count");
        let schedule = FlowMatchSchedule::new(n, train_steps, shift);
        let sigmas = floats(&file, &format!("steps{n}.sigmas"));
        let timesteps = floats(&file, &format!("steps{n}.timesteps"));
        assert_eq!(schedule.sigmas, sigmas, "{n} steps: sigmas");
        assert_eq!(schedule.timesteps, timesteps, "{n} steps: timesteps");
    }
}

#[test]
fn euler_chain_matches() {
    let file = open("sampler/sampler.safetensors");
    let (train_steps, shift) = scheduler_parameters(&floats(&file, "train_sigmas"));
    let x0 = tensor::<4>(&file, "euler.x0");
    let v = tensor::<5>(&file, "euler.v");
    let expected = tensor::<5>(&file, "euler.x");
    let steps = v.dims()[0];
    let schedule = FlowMatchSchedule::new(steps, train_steps, shift);
    let [_, c, f, h, w] = v.dims();
    let mut x = x0;
    let mut worst = 0.0f64;
    for i in 0..steps {
        let vi = v.clone().narrow(0, i, 1).reshape([c, f, h, w]);
        x = schedule.euler_step(i, x, vi);
        let expected_i = expected.clone().narrow(0, i + 1, 1).reshape([c, f, h, w]);
        let diff = Diff::of(&values(x.clone()), &values(expected_i));
        worst = worst.max(diff.max_abs);
    }
    println!("euler max abs error {worst:e}");
    assert!(worst <= 1e-6, "Euler chain max abs error {worst:e} > 1e-6");
}
