//! The LiveAvatar audio front-end around wav2vec2: processor normalisation of the waveform,
//! 50 → 30 fps linear resampling of the hidden states (`F.interpolate`, `align_corners=True`)
//! and the per-clip 25 fps bucketing of `get_audio_embed_bucket_fps` (m = 0).

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use serde::Deserialize;

use super::error::InputError;
use super::wav2vec::Wav2Vec2;
use crate::weights::WeightsError;

/// wav2vec2 frame rate at 16 kHz with the standard 320-sample total stride.
pub const W2V_FPS: usize = 50;
/// Frame rate the reference resamples the features to before bucketing.
pub const FEATURE_FPS: usize = 30;
/// Video frame rate of the generated clips.
pub const VIDEO_FPS: usize = 25;

/// The fields of the folder's `preprocessor_config.json` the front-end honours.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProcessorConfig {
    /// Zero-mean / unit-variance normalisation of the waveform.
    #[serde(default = "default_true")]
    pub do_normalize: bool,
    /// Sample rate the model expects.
    #[serde(default = "default_rate")]
    pub sampling_rate: u32,
}

fn default_true() -> bool {
    true
}
fn default_rate() -> u32 {
    16_000
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            do_normalize: true,
            sampling_rate: 16_000,
        }
    }
}

impl ProcessorConfig {
    /// Reads `preprocessor_config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| WeightsError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The model input for a waveform at [`ProcessorConfig::sampling_rate`].
    pub fn input_values(&self, samples: &[f32]) -> Vec<f32> {
        if self.do_normalize {
            normalize_waveform(samples)
        } else {
            samples.to_vec()
        }
    }
}

/// `Wav2Vec2FeatureExtractor` with `do_normalize`: `(x − mean) / sqrt(var + 1e-7)` over the
/// whole waveform (statistics in f64, result rounded to f32).
pub fn normalize_waveform(samples: &[f32]) -> Vec<f32> {
    if samples.is_empty() {
        return Vec::new();
    }
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    let mean = mean as f32;
    let denom = ((var as f32) + 1e-7f32).sqrt();
    samples.iter().map(|&x| (x - mean) / denom).collect()
}

/// Output length of the reference's `linear_interpolation`: `int(T / 50 · 30)`.
pub fn resampled_len(frames: usize, input_fps: usize, output_fps: usize) -> usize {
    (frames as f64 / input_fps as f64 * output_fps as f64) as usize
}

/// Linear interpolation along dim 1 of `x` `[L, T_in, C]` to `out_len` frames with
/// `align_corners=True` (source position `i · (T_in − 1)/(out_len − 1)`, computed in f32 like
/// PyTorch's CPU kernel).
pub fn interpolate_linear<B: Backend>(x: Tensor<B, 3>, out_len: usize) -> Tensor<B, 3> {
    let [l, t_in, c] = x.dims();
    let device = x.device();
    if t_in == 0 || out_len == 0 {
        return Tensor::zeros([l, out_len, c], &device);
    }
    let scale = if out_len > 1 {
        (t_in - 1) as f32 / (out_len - 1) as f32
    } else {
        0.0
    };
    let mut i0 = Vec::with_capacity(out_len);
    let mut i1 = Vec::with_capacity(out_len);
    let mut w0 = Vec::with_capacity(out_len);
    let mut w1 = Vec::with_capacity(out_len);
    for i in 0..out_len {
        let src = scale * i as f32;
        let lo = (src.floor() as usize).min(t_in - 1);
        let hi = if lo < t_in - 1 { lo + 1 } else { lo };
        let lambda1 = src - lo as f32;
        i0.push(lo as i64);
        i1.push(hi as i64);
        w0.push(1.0 - lambda1);
        w1.push(lambda1);
    }
    let idx = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [out_len]), &device);
    let wt = |v: Vec<f32>| Tensor::<B, 3>::from_data(TensorData::new(v, [1, out_len, 1]), &device);
    let a = x.clone().select(1, idx(i0));
    let b = x.select(1, idx(i1));
    a * wt(w0) + b * wt(w1)
}

/// The 30 fps frame index sampled for each 25 fps video frame, and the number of clips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    /// Clips of `batch_frames` video frames the audio covers (`nr`).
    pub clips: usize,
    /// One 30 fps index per video frame (`clips · batch_frames`); an index `>= T30` stands for
    /// a zero feature vector.
    pub indices: Vec<usize>,
}

/// `get_audio_embed_bucket_fps(…, fps=25, batch_frames, m=0)` index computation.
pub fn bucket_indices(t30: usize, batch_frames: usize) -> Buckets {
    let scale = FEATURE_FPS as f64 / VIDEO_FPS as f64;
    let clips = (t30 as f64 / (batch_frames as f64 * scale)) as usize + 1;
    let n = clips * batch_frames;
    let padded = (n as f64 / VIDEO_FPS as f64 * FEATURE_FPS as f64).ceil() as usize;
    let total = padded.max(t30);
    // numpy: linspace(0, n/25, n, endpoint=False) = i · ((n/25)/n), then ·30, round half even.
    let duration = n as f64 / VIDEO_FPS as f64;
    let step = duration / n as f64;
    let indices = (0..n)
        .map(|i| {
            let r = (i as f64 * step * FEATURE_FPS as f64).round_ties_even();
            (r.max(0.0) as usize).min(total.saturating_sub(1))
        })
        .collect();
    Buckets { clips, indices }
}

/// Builds the DiT audio input `[1, L, C, clips · batch_frames]` from resampled features
/// `[L, T30, C]`: frame `i` takes feature row `indices[i]`, or zeros past the end.
pub fn audio_embedding<B: Backend>(
    feat30: Tensor<B, 3>,
    batch_frames: usize,
) -> (Tensor<B, 4>, Buckets) {
    let [l, t30, c] = feat30.dims();
    let device = feat30.device();
    let buckets = bucket_indices(t30, batch_frames);
    let n = buckets.indices.len();
    // A zero row appended at index T30 serves every out-of-range index.
    let padded = Tensor::cat(vec![feat30, Tensor::zeros([l, 1, c], &device)], 1);
    let idx: Vec<i64> = buckets.indices.iter().map(|&i| i.min(t30) as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [n]), &device);
    let picked = padded.select(1, idx); // [L, N, C]
    (picked.permute([0, 2, 1]).unsqueeze_dim::<4>(0), buckets)
}

/// Everything the pipeline needs from one waveform.
#[derive(Debug, Clone)]
pub struct AudioFeatures<B: Backend> {
    /// wav2vec2 hidden states `[L, T50, C]`.
    pub hidden_50fps: Tensor<B, 3>,
    /// Resampled hidden states `[L, T30, C]`.
    pub features_30fps: Tensor<B, 3>,
    /// DiT audio input `[1, L, C, clips · batch_frames]`.
    pub audio_emb: Tensor<B, 4>,
    /// Clip count and frame indices.
    pub buckets: Buckets,
}

/// Runs the whole front-end on a mono waveform already at the processor's sample rate (the
/// whole file in one pass, as the reference does).
pub fn encode_audio<B: Backend>(
    model: &Wav2Vec2<B>,
    processor: &ProcessorConfig,
    samples_16k: &[f32],
    batch_frames: usize,
    device: &B::Device,
) -> Result<AudioFeatures<B>, InputError> {
    if batch_frames == 0 {
        return Err(InputError::Invalid {
            what: "audio bucketing",
            reason: "batch_frames must be positive".into(),
        });
    }
    // The 50 fps frame rate (and so the 30 / 25 fps mapping) assumes 16 kHz input.
    if processor.sampling_rate != 16_000 {
        return Err(InputError::Invalid {
            what: "audio processor",
            reason: format!(
                "sampling_rate {} is not the 16000 Hz the front-end assumes",
                processor.sampling_rate
            ),
        });
    }
    let normed = processor.input_values(samples_16k);
    let n = normed.len();
    let input = Tensor::<B, 2>::from_data(TensorData::new(normed, [1, n]), device);
    let hidden_50fps = model.hidden_states_stacked(input)?;
    let t50 = hidden_50fps.dims()[1];
    let features_30fps = interpolate_linear(
        hidden_50fps.clone(),
        resampled_len(t50, W2V_FPS, FEATURE_FPS),
    );
    let (audio_emb, buckets) = audio_embedding(features_30fps.clone(), batch_frames);
    Ok(AudioFeatures {
        hidden_50fps,
        features_30fps,
        audio_emb,
        buckets,
    })
}
