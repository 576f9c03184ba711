//! Decoding a portrait file into upright 8-bit RGB: PNG, JPEG (CMYK too), WebP and BMP, EXIF
//! orientation applied, transparency flattened onto white, and sizes checked from the header
//! before any pixel buffer is allocated.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, Rgba};

use super::error::{MediaError, read_input};

/// Below this the 64-pixel output grid has nothing to resample from.
pub const MIN_IMAGE_SIDE: u32 = 64;
/// Larger images are almost always mistakes, and decoding one would take gigabytes.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Reads, validates and decodes a portrait file.
pub fn load_image(path: &Path) -> Result<RgbImage, MediaError> {
    let bytes = read_input(path)?;
    decode_image(path, &bytes)
}

/// Decodes image bytes; `path` only names the source in errors.
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<RgbImage, MediaError> {
    let format_error = |detail: String| MediaError::ImageFormat {
        path: path.to_path_buf(),
        detail,
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format_error(e.to_string()))?;
    match reader.format() {
        None => {
            return Err(format_error(
                "its content is not PNG, JPEG, WebP or BMP data".into(),
            ));
        }
        // The JPEG decoder fills a cut-off file with grey rather than failing.
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(format_error(
                "the JPEG data is truncated (it has no end-of-image marker)".into(),
            ));
        }
        Some(_) => {}
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format_error(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(MediaError::ImageTooLarge {
            path: path.to_path_buf(),
            width,
            height,
            max: MAX_IMAGE_SIDE,
        });
    }
    if width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE {
        return Err(MediaError::ImageTooSmall {
            path: path.to_path_buf(),
            width,
            height,
            min: MIN_IMAGE_SIDE,
        });
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| format_error(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(flatten_to_rgb(&image))
}

/// Whether a JPEG has its end-of-image marker after the start of its first scan. Inside
/// entropy-coded data every 0xFF byte is followed by 0x00 or a restart marker, so an `FF D9`
/// pair there can only be the real end.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| bytes.windows(2).position(|w| w[0] == 0xFF && w[1] == m);
    match marker(0xDA) {
        Some(scan) => bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Drops alpha by compositing onto white, so a cut-out portrait gets a clean background instead
/// of whatever colour its transparent pixels happen to hold.
fn flatten_to_rgb(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let Rgba([r, g, b, a]) = *rgba.get_pixel(x, y);
        let alpha = u32::from(a);
        let blend = |c: u8| ((u32::from(c) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}
