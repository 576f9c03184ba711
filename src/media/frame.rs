//! A finished video frame (8-bit RGB) and the sink trait every output format implements, so the
//! pipeline can feed an MP4, a PNG sequence or the preview the same way, clip by clip.

use std::path::PathBuf;

use super::error::MediaError;

/// One frame of packed RGB bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbFrame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl RgbFrame {
    /// Converts planar `[3, H, W]` values in [-1, 1] to bytes the way the reference saves video
    /// (spec §5.8): clamp, `(x + 1) / 2 · 255`, then truncate, not round.
    pub fn from_signed_unit_chw(values: &[f32], width: u32, height: u32) -> Option<Self> {
        let plane = width as usize * height as usize;
        if values.len() != 3 * plane {
            return None;
        }
        let mut rgb = vec![0u8; 3 * plane];
        for i in 0..plane {
            for c in 0..3 {
                let x = values[c * plane + i].clamp(-1.0, 1.0);
                rgb[3 * i + c] = ((x + 1.0) / 2.0 * 255.0) as u8;
            }
        }
        Some(Self { width, height, rgb })
    }

    pub fn is_well_formed(&self) -> bool {
        self.rgb.len() == 3 * self.width as usize * self.height as usize
    }
}

/// Where finished frames go. Writers accept frames as they are made and keep what they have
/// already written playable if the render stops early.
pub trait FrameSink {
    /// Appends frames (one block or clip at a time) and makes them durable on disk.
    fn write_frames(&mut self, frames: &[RgbFrame]) -> Result<(), MediaError>;
    /// Frames written so far.
    fn frames_written(&self) -> u64;
    /// Completes the output and returns its path.
    fn finish(self: Box<Self>) -> Result<PathBuf, MediaError>;
}

/// Checks a frame against the size a writer was opened with.
pub(crate) fn check_frame(
    frame: &RgbFrame,
    index: u64,
    width: u32,
    height: u32,
) -> Result<(), MediaError> {
    if frame.width == width && frame.height == height && frame.is_well_formed() {
        Ok(())
    } else {
        Err(MediaError::FrameShape {
            index,
            width: frame.width,
            height: frame.height,
            len: frame.rgb.len(),
            expected_width: width,
            expected_height: height,
        })
    }
}
