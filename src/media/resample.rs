//! Sample-rate conversion with rubato's FFT resampler (fixed ratio, whole clip at once, delay
//! trimmed), used for the model's 16 kHz input and the MP4's 48 kHz track.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::error::MediaError;

/// Frames per FFT chunk: large enough for a sharp anti-aliasing filter, small enough that a
/// short clip is not dominated by padding.
const CHUNK_FRAMES: usize = 1024;

/// Resamples mono audio from `from` Hz to `to` Hz. The output has `len · to / from` samples
/// (rounded up), aligned with the input (the filter delay is removed).
pub fn resample_mono(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, MediaError> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let fail = |detail: String| MediaError::Resample { from, to, detail };
    let mut resampler = Fft::<f32>::new(
        from as usize,
        to as usize,
        CHUNK_FRAMES,
        1,
        FixedSync::Input,
    )
    .map_err(|e| fail(e.to_string()))?;
    let input =
        InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| fail(e.to_string()))?;
    let output = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| fail(e.to_string()))?;
    Ok(output.take_data())
}
