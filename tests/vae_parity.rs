//! VAE parity against the reference fixtures (`vae/`): encode of an image and a video, one-go
//! decode, and streaming decode in the reference's 7 + 3 + 3 latent calls.

mod common;

use avatar_studio::model::vae::{StreamDecoder, VaeConfig, WanVae};
use avatar_studio::weights::loader::TensorSource;
use burn::tensor::Tensor;
use common::encoder_fixtures::*;

// Tolerances from the fixtures README §4 / manifest `recommended_tolerances.vae`.
const ENCODE_ATOL: f32 = 1e-5;
const DECODE_ATOL: f32 = 1e-4;

fn config(io: &avatar_studio::weights::StFile) -> VaeConfig {
    let mut cfg: VaeConfig =
        serde_json::from_value(component_config("vae")).expect("vae config from manifest");
    cfg.latent_mean = io.load_f32("latent_mean").expect("latent_mean");
    cfg.latent_std = io.load_f32("latent_std").expect("latent_std");
    cfg
}

fn load(io: &avatar_studio::weights::StFile) -> WanVae<B> {
    WanVae::from_file(fixture("vae/vae.safetensors"), config(io), &device())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn encode_video_and_image() {
    let io = open("vae/vae_io.safetensors");
    let vae = load(&io);
    let video: Tensor<B, 4> = tensor(&io, "video");
    let video = video.unsqueeze_dim::<5>(0);
    let z = vae
        .encode(video.clone())
        .expect("encode")
        .squeeze_dim::<4>(0);
    assert_close(
        "encode_video",
        z,
        tensor(&io, "encode_video"),
        ENCODE_ATOL,
        0.0,
    );
    let img = vae
        .encode(video.narrow(2, 0, 1))
        .expect("encode")
        .squeeze_dim::<4>(0);
    assert_close(
        "encode_image",
        img,
        tensor(&io, "encode_image"),
        ENCODE_ATOL,
        0.0,
    );
}

#[test]
fn decode_in_one_go() {
    let io = open("vae/vae_io.safetensors");
    let vae = load(&io);
    let z: Tensor<B, 4> = tensor(&io, "encode_video");
    let out = vae
        .decode(z.unsqueeze_dim(0))
        .expect("decode")
        .squeeze_dim::<4>(0);
    assert_close(
        "decode_video",
        out,
        tensor(&io, "decode_video"),
        DECODE_ATOL,
        0.0,
    );
}

#[test]
fn streaming_decode_matches_reference_and_one_go() {
    let io = open("vae/vae_io.safetensors");
    let vae = load(&io);
    let z: Tensor<B, 4> = tensor(&io, "stream.z");
    let z = z.unsqueeze_dim::<5>(0);
    // Call sizes come from the fixture's output lengths: first call n latents → 1 + 4(n−1)
    // frames, later calls → 4n frames.
    let mut stream = StreamDecoder::new();
    let mut start = 0;
    let mut outs = Vec::new();
    for (i, key) in ["stream.out0", "stream.out1", "stream.out2"]
        .iter()
        .enumerate()
    {
        let frames = shape(&io, key)[1];
        let n = if i == 0 {
            (frames - 1) / 4 + 1
        } else {
            frames / 4
        };
        let out = stream
            .decode(&vae, z.clone().narrow(2, start, n))
            .expect("stream decode")
            .squeeze_dim::<4>(0);
        start += n;
        assert_close(key, out.clone(), tensor(&io, key), DECODE_ATOL, 0.0);
        outs.push(out);
    }
    assert_eq!(start, shape(&io, "stream.z")[1], "all latents consumed");
    let streamed = values(Tensor::cat(outs, 1));
    let one_go = values(vae.decode(z).expect("decode").squeeze_dim::<4>(0));
    assert_eq!(
        streamed, one_go,
        "streaming decode must equal the one-go decode exactly"
    );
}

#[test]
fn bad_inputs_are_errors() {
    let io = open("vae/vae_io.safetensors");
    let vae = load(&io);
    let z_dim = vae.config().z_dim;
    let four_channels = Tensor::<B, 5>::zeros([1, 4, 1, 16, 16], &device());
    assert!(vae.encode(four_channels).is_err());
    let no_latents = Tensor::<B, 5>::zeros([1, z_dim, 0, 2, 2], &device());
    assert!(vae.decode(no_latents).is_err());
    let wrong_z = Tensor::<B, 5>::zeros([1, z_dim + 1, 1, 2, 2], &device());
    assert!(StreamDecoder::new().decode(&vae, wrong_z).is_err());
}
