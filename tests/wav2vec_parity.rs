//! wav2vec2 + audio front-end parity against `audio/`: processor normalisation, all hidden
//! states, 30 fps resampling, bucket indices and the DiT audio input; plus the legacy
//! `weight_g/weight_v` positional-conv names.

mod common;

use std::path::Path;

use avatar_studio::model::audio_features::{
    FEATURE_FPS, ProcessorConfig, W2V_FPS, audio_embedding, bucket_indices, encode_audio,
    interpolate_linear, resampled_len,
};
use avatar_studio::model::wav2vec::{Wav2Vec2, Wav2VecConfig};
use avatar_studio::weights::loader::{TensorInfo, TensorSource};
use avatar_studio::weights::{StFile, WeightsError};
use burn::tensor::{Tensor, TensorData};
use common::encoder_fixtures::*;

// Tolerances from the fixtures README §4 / manifest `recommended_tolerances.audio`.
const INPUT_ATOL: f32 = 1e-6;
const ATOL: f32 = 2e-4;
const RTOL: f32 = 1e-5;

fn config() -> Wav2VecConfig {
    Wav2VecConfig::from_file(fixture("audio/w2v_config.json")).unwrap_or_else(|e| panic!("{e}"))
}

fn processor() -> ProcessorConfig {
    ProcessorConfig::from_file(fixture("audio/w2v_preprocessor_config.json"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn batch_frames(io: &StFile) -> usize {
    // audio_emb is [1, L, C, batch_frames · nr].
    let n = shape(io, "audio_emb")[3];
    let (_, nr) = io.load_i64("nr").expect("nr");
    n / nr[0] as usize
}

#[test]
fn processor_normalisation() {
    let io = open("audio/audio_io.safetensors");
    let wav = io.load_f32("waveform").expect("waveform");
    let n = wav.len();
    let ours = Tensor::<B, 2>::from_data(
        TensorData::new(processor().input_values(&wav), [1, n]),
        &device(),
    );
    assert_close(
        "input_values",
        ours,
        tensor(&io, "input_values"),
        INPUT_ATOL,
        0.0,
    );
}

#[test]
fn hidden_states_features_and_buckets() {
    let io = open("audio/audio_io.safetensors");
    let src = StFile::open(fixture("audio/w2v.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let model = Wav2Vec2::<B>::load(&src, config(), &device()).unwrap_or_else(|e| panic!("{e}"));
    let wav = io.load_f32("waveform").expect("waveform");
    let bf = batch_frames(&io);
    let feats = encode_audio(&model, &processor(), &wav, bf, &device()).expect("encode_audio");

    assert_close(
        "hidden_states",
        feats.hidden_50fps.clone(),
        tensor(&io, "hidden_states"),
        ATOL,
        RTOL,
    );
    assert_close(
        "feat_30fps",
        feats.features_30fps.clone(),
        tensor(&io, "feat_30fps"),
        ATOL,
        RTOL,
    );
    assert_close(
        "audio_emb",
        feats.audio_emb,
        tensor(&io, "audio_emb"),
        ATOL,
        RTOL,
    );

    let (_, expected_idx) = io.load_i64("bucket_indices").expect("bucket_indices");
    let ours: Vec<i64> = feats.buckets.indices.iter().map(|&i| i as i64).collect();
    assert_eq!(ours, expected_idx, "bucket indices");
    let (_, nr) = io.load_i64("nr").expect("nr");
    assert_eq!(feats.buckets.clips as i64, nr[0], "clip count");
}

#[test]
fn resampling_and_bucketing_from_reference_hidden_states() {
    // Isolates the post-processing from the network: feed the reference hidden states.
    let io = open("audio/audio_io.safetensors");
    let hidden: Tensor<B, 3> = tensor(&io, "hidden_states");
    let t50 = hidden.dims()[1];
    let out_len = resampled_len(t50, W2V_FPS, FEATURE_FPS);
    assert_eq!(out_len, shape(&io, "feat_30fps")[1]);
    let f30 = interpolate_linear(hidden, out_len);
    assert_close(
        "feat_30fps (from ref hidden)",
        f30.clone(),
        tensor(&io, "feat_30fps"),
        ATOL,
        RTOL,
    );
    let (emb, b) = audio_embedding(tensor(&io, "feat_30fps"), batch_frames(&io));
    assert_close(
        "audio_emb (from ref feat)",
        emb,
        tensor(&io, "audio_emb"),
        0.0,
        0.0,
    );
    assert_eq!(b, bucket_indices(out_len, batch_frames(&io)));
}

/// Hides the new-style positional-conv names of the main file and serves the legacy
/// `weight_g/weight_v` file instead, as an old checkpoint would.
struct LegacyPosConv {
    main: StFile,
    legacy: StFile,
}

impl TensorSource for LegacyPosConv {
    fn path(&self) -> &Path {
        self.main.path()
    }
    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .main
            .keys()
            .into_iter()
            .filter(|k| !k.contains("parametrizations"))
            .collect();
        k.extend(self.legacy.keys());
        k.sort();
        k
    }
    fn info(&self, key: &str) -> Option<TensorInfo> {
        if key.contains("parametrizations") {
            return None;
        }
        self.legacy.info(key).or_else(|| self.main.info(key))
    }
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError> {
        if self.legacy.contains(key) {
            self.legacy.load_f32(key)
        } else {
            self.main.load_f32(key)
        }
    }
}

#[test]
fn legacy_weight_norm_names_give_the_same_states() {
    let io = open("audio/audio_io.safetensors");
    let legacy = StFile::open(fixture("audio/w2v_posconv_legacy_names.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        legacy.keys().iter().any(|k| k.ends_with("weight_g")),
        "legacy fixture has weight_g"
    );
    let src = LegacyPosConv {
        main: StFile::open(fixture("audio/w2v.safetensors")).unwrap_or_else(|e| panic!("{e}")),
        legacy,
    };
    let model = Wav2Vec2::<B>::load(&src, config(), &device()).unwrap_or_else(|e| panic!("{e}"));
    let input: Tensor<B, 2> = tensor(&io, "input_values");
    let states = model.hidden_states_stacked(input).expect("hidden states");
    assert_close(
        "hidden_states (legacy names)",
        states,
        tensor(&io, "hidden_states"),
        ATOL,
        RTOL,
    );
}

#[test]
fn too_short_audio_is_an_error() {
    let src = StFile::open(fixture("audio/w2v.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let model = Wav2Vec2::<B>::load(&src, config(), &device()).unwrap_or_else(|e| panic!("{e}"));
    let kernel0 = config().conv_kernel[0];
    assert!(encode_audio(&model, &processor(), &vec![0.1; kernel0 - 1], 48, &device()).is_err());
}
