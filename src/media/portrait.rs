//! The reference's portrait preprocessing (spec §5.2): choose the output size from the image's
//! aspect and the size area, resize the shorter side (bilinear, antialiased), centre-crop or
//! black-pad to the frame, and lay the pixels out as the `[3, H, W]` values in [-1, 1] that the
//! VAE encoder takes.

use std::path::Path;

use image::RgbImage;
use image::imageops::{self, FilterType};

use super::error::MediaError;
use super::geometry::{crop_plan, output_size};
use super::image::load_image;

/// A portrait at its output size, ready for the VAE.
#[derive(Debug, Clone)]
pub struct PreparedPortrait {
    /// The frame exactly as the model will see it (useful as the studio's thumbnail).
    pub frame: RgbImage,
    /// The decoded file's size before preprocessing.
    pub source_width: u32,
    pub source_height: u32,
}

impl PreparedPortrait {
    pub fn width(&self) -> u32 {
        self.frame.width()
    }

    pub fn height(&self) -> u32 {
        self.frame.height()
    }

    /// Planar `[3, H, W]` values `x / 255 · 2 − 1`, as `ToTensor()` then `·2 − 1`.
    pub fn to_signed_unit_chw(&self) -> Vec<f32> {
        let (w, h) = self.frame.dimensions();
        let plane = (w * h) as usize;
        let mut out = vec![0.0f32; 3 * plane];
        for (i, pixel) in self.frame.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = f32::from(pixel[c]) / 255.0 * 2.0 - 1.0;
            }
        }
        out
    }
}

/// Decodes a portrait file and prepares it for the given size area.
pub fn load_portrait(path: &Path, area: u64) -> Result<PreparedPortrait, MediaError> {
    let image = load_image(path)?;
    Ok(prepare_portrait(&image, area))
}

/// Resizes and crops a decoded image into the output frame for `area`.
pub fn prepare_portrait(image: &RgbImage, area: u64) -> PreparedPortrait {
    let (source_width, source_height) = image.dimensions();
    let (out_h, out_w) = output_size(source_height, source_width, area);
    let plan = crop_plan(source_width, source_height, out_w, out_h);
    let resized = if (plan.resized_width, plan.resized_height) == (source_width, source_height) {
        image.clone()
    } else {
        // Triangle with the support widened by the scale factor on downscaling is PIL's
        // antialiased bilinear, which torchvision's Resize uses on PIL images.
        imageops::resize(
            image,
            plan.resized_width,
            plan.resized_height,
            FilterType::Triangle,
        )
    };
    let mut padded = RgbImage::new(
        plan.resized_width + plan.pad_left + plan.pad_right,
        plan.resized_height + plan.pad_top + plan.pad_bottom,
    );
    imageops::replace(
        &mut padded,
        &resized,
        i64::from(plan.pad_left),
        i64::from(plan.pad_top),
    );
    let frame = imageops::crop_imm(&padded, plan.crop_left, plan.crop_top, out_w, out_h).to_image();
    PreparedPortrait {
        frame,
        source_width,
        source_height,
    }
}
