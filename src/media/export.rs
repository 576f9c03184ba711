//! The editors' export: numbered PNG frames plus a WAV of the sound track in one folder, both
//! kept valid after every write so a stopped render still leaves usable material.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::error::MediaError;
use super::frame::{FrameSink, RgbFrame, check_frame};
use super::output_path::check_output_dir;
use super::soundtrack::{OUTPUT_SAMPLE_RATE, Soundtrack, samples_for_frames};

/// File name of frame `index` (0-based) in an exported sequence.
pub fn frame_file_name(index: u64) -> String {
    format!("frame_{:06}.png", index + 1)
}

/// Name of the sound track file in an exported sequence.
pub const WAV_NAME: &str = "audio.wav";

pub struct PngSequenceWriter {
    dir: PathBuf,
    width: u32,
    height: u32,
    written: u64,
    soundtrack: Option<Soundtrack>,
    wav: Option<hound::WavWriter<BufWriter<File>>>,
    samples_written: u64,
}

impl PngSequenceWriter {
    /// Creates (if needed) `dir` and prepares to write `width × height` frames there.
    pub fn create(
        dir: &Path,
        width: u32,
        height: u32,
        soundtrack: Option<Soundtrack>,
    ) -> Result<Self, MediaError> {
        check_output_dir(dir)?;
        let io_fail = |source| MediaError::OutputNotWritable {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_fail)?;
        let wav = match &soundtrack {
            Some(_) => {
                let spec = hound::WavSpec {
                    channels: 1,
                    sample_rate: OUTPUT_SAMPLE_RATE,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                let path = dir.join(WAV_NAME);
                Some(hound::WavWriter::create(&path, spec).map_err(|e| wav_error(&path, e))?)
            }
            None => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            width,
            height,
            written: 0,
            soundtrack,
            wav,
            samples_written: 0,
        })
    }
}

fn wav_error(path: &Path, e: hound::Error) -> MediaError {
    MediaError::Encode {
        path: path.to_path_buf(),
        detail: format!("writing WAV: {e}"),
    }
}

impl FrameSink for PngSequenceWriter {
    fn write_frames(&mut self, frames: &[RgbFrame]) -> Result<(), MediaError> {
        for frame in frames {
            check_frame(frame, self.written, self.width, self.height)?;
            let path = self.dir.join(frame_file_name(self.written));
            // Write under a temporary name first so no half-written PNG carries a frame name.
            let partial = path.with_extension("png.partial");
            image::save_buffer_with_format(
                &partial,
                &frame.rgb,
                frame.width,
                frame.height,
                image::ExtendedColorType::Rgb8,
                image::ImageFormat::Png,
            )
            .map_err(|e| MediaError::Encode {
                path: partial.clone(),
                detail: e.to_string(),
            })?;
            fs::rename(&partial, &path).map_err(|source| MediaError::OutputNotWritable {
                path: path.clone(),
                source,
            })?;
            self.written += 1;
        }
        if let (Some(track), Some(wav)) = (&self.soundtrack, &mut self.wav) {
            let end = samples_for_frames(self.written);
            let wav_path = self.dir.join(WAV_NAME);
            for sample in track.span(self.samples_written, end) {
                let value = (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16;
                wav.write_sample(value)
                    .map_err(|e| wav_error(&wav_path, e))?;
            }
            self.samples_written = end;
            // hound rewrites the header on flush, so the WAV is valid after every block.
            wav.flush().map_err(|e| wav_error(&wav_path, e))?;
        }
        Ok(())
    }

    fn frames_written(&self) -> u64 {
        self.written
    }

    fn finish(mut self: Box<Self>) -> Result<PathBuf, MediaError> {
        if let Some(wav) = self.wav.take() {
            let wav_path = self.dir.join(WAV_NAME);
            wav.finalize().map_err(|e| wav_error(&wav_path, e))?;
        }
        Ok(self.dir.clone())
    }
}
