//! Decoded video tensors turned into 8-bit frames for writers and the preview.

use burn::tensor::{Tensor, backend::Backend};

use crate::media::frame::RgbFrame;

/// `[3, frames, H, W]` in [-1, 1] → one [`RgbFrame`] per frame, converted as the reference
/// saves video (clamp, scale, truncate).
pub fn video_to_frames<B: Backend>(video: Tensor<B, 4>) -> Vec<RgbFrame> {
    let [channels, frames, height, width] = video.dims();
    if channels != 3 || frames == 0 {
        return Vec::new();
    }
    let values = match video.into_data().convert::<f32>().into_vec::<f32>() {
        Ok(values) => values,
        Err(_) => return Vec::new(),
    };
    let plane = height * width;
    let mut planar = vec![0f32; 3 * plane];
    (0..frames)
        .filter_map(|t| {
            for c in 0..3 {
                let src = (c * frames + t) * plane;
                planar[c * plane..(c + 1) * plane].copy_from_slice(&values[src..src + plane]);
            }
            RgbFrame::from_signed_unit_chw(&planar, width as u32, height as u32)
        })
        .collect()
}
