//! The output frame size for a portrait and a size choice, as the reference computes it
//! (`get_size_less_than_area`, spec §5.2): the largest scale whose 64-aligned frame fits the
//! area, so the aspect follows the image and `--size` only sets an area.

/// Both output sides are multiples of this (the VAE's 8× and the DiT's 2× patch, twice over).
pub const SIZE_DIVISOR: u32 = 64;

/// Output `(height, width)` for an image of `height × width` pixels and a maximum `area`.
///
/// Reproduces the reference's arithmetic exactly, including its `2ac` (not `4ac`) quadratic,
/// the 100-step scan and its fallback, because the frame size changes every latent shape.
pub fn output_size(height: u32, width: u32, area: u64) -> (u32, u32) {
    let (h, w) = (f64::from(height), f64::from(width));
    let pixels = u64::from(height) * u64::from(width);
    let (min_scale, max_scale) = if pixels <= area {
        (0.1, 1.0)
    } else {
        let d = i128::from(SIZE_DIVISOR - 1);
        let b = d * (i128::from(height) + i128::from(width));
        let a = i128::from(pixels);
        let c = d * d - i128::from(area);
        let disc = (b * b - 2 * a * c) as f64;
        let min_scale = (-(b as f64) + disc.sqrt()) / (2.0 * a as f64);
        let max_scale = (area as f64 / pixels as f64).sqrt();
        (min_scale, max_scale)
    };
    for i in 0..100 {
        let scale = max_scale - (max_scale - min_scale) * f64::from(i) / 100.0;
        let new_h = (h * scale) as u64;
        let new_w = (w * scale) as u64;
        let padded_h = round_up(new_h);
        let padded_w = round_up(new_w);
        if padded_h * padded_w <= area {
            return (padded_h as u32, padded_w as u32);
        }
    }
    let divisor = f64::from(SIZE_DIVISOR);
    let aspect = w / h;
    let mut target_w = (((area as f64) * aspect).sqrt() / divisor).floor() * divisor;
    let mut target_h = (((area as f64) / aspect).sqrt() / divisor).floor() * divisor;
    if target_w >= w || target_h >= h {
        target_w = (w / divisor).floor() * divisor;
        target_h = (h / divisor).floor() * divisor;
    }
    (target_h as u32, target_w as u32)
}

fn round_up(n: u64) -> u64 {
    let d = u64::from(SIZE_DIVISOR);
    n + (d - n % d) % d
}

/// How torchvision's `Resize(short)` + `CenterCrop((H, W))` place an image: the resized size,
/// the black padding added on each side, and the crop offset into the padded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropPlan {
    pub resized_width: u32,
    pub resized_height: u32,
    pub pad_left: u32,
    pub pad_top: u32,
    pub pad_right: u32,
    pub pad_bottom: u32,
    pub crop_left: u32,
    pub crop_top: u32,
}

/// The placement of an `in_width × in_height` image into an `out_width × out_height` frame.
pub fn crop_plan(in_width: u32, in_height: u32, out_width: u32, out_height: u32) -> CropPlan {
    let short_target = out_width.min(out_height);
    // torchvision: the shorter side becomes `short_target`, the longer side is truncated.
    let (resized_width, resized_height) = if in_width <= in_height {
        let long = (f64::from(short_target) * f64::from(in_height) / f64::from(in_width)) as u32;
        (short_target, long)
    } else {
        let long = (f64::from(short_target) * f64::from(in_width) / f64::from(in_height)) as u32;
        (long, short_target)
    };
    let gap = |target: u32, have: u32| target.saturating_sub(have);
    let (gw, gh) = (
        gap(out_width, resized_width),
        gap(out_height, resized_height),
    );
    let (pad_left, pad_right) = (gw / 2, gw.div_ceil(2));
    let (pad_top, pad_bottom) = (gh / 2, gh.div_ceil(2));
    let padded_w = resized_width + pad_left + pad_right;
    let padded_h = resized_height + pad_top + pad_bottom;
    // Python's round() rounds halves to even; torchvision inherits it.
    let offset = |have: u32, want: u32| (f64::from(have - want) / 2.0).round_ties_even() as u32;
    CropPlan {
        resized_width,
        resized_height,
        pad_left,
        pad_top,
        pad_right,
        pad_bottom,
        crop_left: offset(padded_w, out_width),
        crop_top: offset(padded_h, out_height),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's table of results (§5.2), re-derived there by running the reference algorithm.
    #[test]
    fn matches_the_reference_size_table() {
        type HeightWidth = (u32, u32);
        let cases: [(HeightWidth, u64, HeightWidth); 9] = [
            ((400, 720), 704 * 384, (384, 704)),
            ((720, 1280), 704 * 384, (384, 704)),
            ((720, 400), 704 * 384, (704, 384)),
            ((400, 720), 720 * 400, (384, 704)),
            ((400, 720), 688 * 368, (384, 640)),
            ((400, 720), 384 * 256, (256, 384)),
            ((400, 720), 832 * 480, (448, 768)),
            ((720, 1280), 832 * 480, (448, 832)),
            ((720, 1280), 1280 * 720, (704, 1280)),
        ];
        for ((h, w), area, expected) in cases {
            assert_eq!(output_size(h, w, area), expected, "{h}x{w} at area {area}");
        }
        assert_eq!(output_size(512, 512, 704 * 384), (512, 512));
        assert_eq!(output_size(400, 720, 1280 * 720), (448, 768));
        assert_eq!(output_size(1024, 1024, 1280 * 720), (960, 960));
    }

    /// Spec §5.2 example: a 720×400 input resized to 691×384 gets 6 px left / 7 px right of
    /// black in the 704-wide frame.
    #[test]
    fn pads_like_torchvision_center_crop() {
        let plan = crop_plan(720, 400, 704, 384);
        assert_eq!((plan.resized_width, plan.resized_height), (691, 384));
        assert_eq!((plan.pad_left, plan.pad_right), (6, 7));
        assert_eq!((plan.crop_left, plan.crop_top), (0, 0));
        let plan = crop_plan(1280, 720, 704, 384);
        assert_eq!(
            (plan.resized_width, plan.pad_left, plan.pad_right),
            (682, 11, 11)
        );
    }

    #[test]
    fn crops_the_centre_of_a_larger_image() {
        let plan = crop_plan(1000, 500, 512, 512);
        assert_eq!((plan.resized_width, plan.resized_height), (1024, 512));
        assert_eq!((plan.crop_left, plan.crop_top), (256, 0));
        assert_eq!(plan.pad_left + plan.pad_right, 0);
    }
}
