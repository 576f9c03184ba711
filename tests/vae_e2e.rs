//! VAE checks at the end-to-end fixture's geometry (64×128): the single-GPU reference latent
//! (encode of the image repeated 5×, latent 1), the 365-frame motion-latent encode, and the
//! deferred decode of clip 0 (92 context latents + 12 clip latents → the first video frames).

mod common;

use avatar_studio::model::vae::{VaeConfig, WanVae};
use avatar_studio::weights::StFile;
use burn::tensor::{Tensor, TensorData};
use common::encoder_fixtures::*;

// VAE-only comparisons use the VAE tolerances (README §4: encode atol 1e-5, decode 1e-4); the
// e2e video itself is specified at atol 3e-3 because it also carries the DiT's spread.
const ENCODE_ATOL: f32 = 1e-5;

fn vae() -> WanVae<B> {
    let io = open("vae/vae_io.safetensors");
    let mut cfg: VaeConfig = serde_json::from_value(component_config("vae")).expect("vae config");
    cfg.latent_mean =
        avatar_studio::weights::loader::TensorSource::load_f32(&io, "latent_mean").expect("mean");
    cfg.latent_std =
        avatar_studio::weights::loader::TensorSource::load_f32(&io, "latent_std").expect("std");
    // The e2e run loads the VAE from the .pth, as the pipeline does.
    WanVae::from_file(fixture("vae/vae.pth"), cfg, &device()).unwrap_or_else(|e| panic!("{e}"))
}

/// `ToTensor` then `·2 − 1`: `[1, 3, 1, H, W]` in [-1, 1].
fn image(io: &StFile) -> Tensor<B, 5> {
    let (dtype, shape, bytes) = io.raw("image_uint8").expect("image");
    assert_eq!(dtype, "U8");
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let v: Vec<f32> = bytes
        .iter()
        .map(|&b| f32::from(b) / 255.0 * 2.0 - 1.0)
        .collect();
    Tensor::<B, 3>::from_data(TensorData::new(v, [h, w, c]), &device())
        .permute([2, 0, 1])
        .unsqueeze_dim::<4>(1)
        .unsqueeze_dim::<5>(0)
}

fn config_usize(key: &str) -> usize {
    manifest()["components"]["e2e"]["config"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("e2e config lacks {key}")) as usize
}

#[test]
fn reference_latent_from_image_repeated_five_times() {
    let io = open("e2e/e2e.safetensors");
    let vae = vae();
    let calls = &manifest()["components"]["e2e"]["checks"]["encode_calls"];
    let frames = calls[0][2].as_u64().expect("first encode call frames") as usize;
    let z = vae
        .encode(image(&io).repeat_dim(2, frames))
        .expect("encode");
    let z1 = z.narrow(2, 1, 1);
    assert_close(
        "ref_latents",
        z1,
        tensor(&io, "ref_latents"),
        ENCODE_ATOL,
        0.0,
    );
}

#[test]
fn motion_latents_and_clip0_decode() {
    let io = open("e2e/e2e.safetensors");
    let vae = vae();
    let n_motion = config_usize("motion_latent_frames");
    let frames = 1 + 4 * (n_motion - 1);
    let motion = vae
        .encode(image(&io).repeat_dim(2, frames))
        .expect("encode");
    assert_eq!(motion.dims()[2], n_motion);
    let last = shape(&io, "motion_latents_last19")[2];
    let tail = motion.clone().narrow(2, n_motion - last, last);
    assert_close(
        "motion_latents_last19",
        tail,
        tensor(&io, "motion_latents_last19"),
        ENCODE_ATOL,
        0.0,
    );

    // Clip 0's deferred decode: cat(motion latents, clip latents) → keep the last
    // infer_frames frames, of which the first 3 are dropped for clip 0.
    let clip: Tensor<B, 5> = tensor(&io, "clip_latents");
    let clip0 = clip.narrow(0, 0, 1);
    let decoded = vae
        .decode(Tensor::cat(vec![motion, clip0], 2))
        .expect("decode");
    let t = decoded.dims()[2];
    let infer = config_usize("infer_frames");
    let ours = decoded
        .narrow(2, t - infer + 3, infer - 3)
        .squeeze_dim::<4>(0);
    let video: Tensor<B, 4> = tensor(&io, "video");
    let expected = video.narrow(1, 0, infer - 3);
    assert_close("video clip 0 (decode)", ours, expected, 1e-4, 0.0);
}
