//! Portrait input: every supported format decodes upright to RGB, CMYK JPEGs and EXIF
//! orientation are handled, transparency is flattened, and the preprocessing reproduces the
//! reference's frame sizes and black borders.

use std::path::Path;

use avatar_studio::media::image::load_image;
use avatar_studio::media::portrait::{load_portrait, prepare_portrait};
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A test card: left half red, right half blue, with a green top-left 8×8 marker so that
/// rotations and flips can be told apart.
fn test_card(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if x < 8 && y < 8 {
            Rgb([0, 255, 0])
        } else if x < w / 2 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    })
}

fn close(a: Rgb<u8>, b: [u8; 3], tol: u8) -> bool {
    a.0.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

#[test]
fn decodes_png_jpeg_webp_bmp() {
    let dir = tempfile::tempdir().unwrap();
    let card = test_card(160, 96);
    for (name, format, tol) in [
        ("card.png", ImageFormat::Png, 0),
        ("card.jpg", ImageFormat::Jpeg, 40),
        ("card.webp", ImageFormat::WebP, 0),
        ("card.bmp", ImageFormat::Bmp, 0),
    ] {
        let path = dir.path().join(name);
        card.save_with_format(&path, format).unwrap();
        let img = load_image(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.dimensions(), (160, 96), "{name}");
        assert!(
            close(*img.get_pixel(40, 50), [220, 20, 20], tol),
            "{name} left"
        );
        assert!(
            close(*img.get_pixel(120, 50), [20, 20, 220], tol),
            "{name} right"
        );
        assert!(
            close(*img.get_pixel(2, 2), [0, 255, 0], tol + 30),
            "{name} marker"
        );
    }
}

#[test]
fn format_follows_content_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actually_a_png.jpg");
    test_card(96, 96)
        .save_with_format(&path, ImageFormat::Png)
        .unwrap();
    assert_eq!(load_image(&path).unwrap().dimensions(), (96, 96));
}

#[test]
fn flattens_transparency_onto_white() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cutout.png");
    let img = RgbaImage::from_fn(80, 80, |x, _| {
        if x < 40 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([200, 10, 10, 255])
        }
    });
    img.save(&path).unwrap();
    let rgb = load_image(&path).unwrap();
    assert_eq!(rgb.get_pixel(10, 10).0, [255, 255, 255]);
    assert_eq!(rgb.get_pixel(60, 10).0, [200, 10, 10]);
}

fn write_cmyk_jpeg(path: &Path, w: u16, h: u16, cmyk: [u8; 4]) {
    let data: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|_| cmyk)
        .collect();
    let encoder = jpeg_encoder::Encoder::new_file(path, 95).unwrap();
    encoder
        .encode(&data, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
}

#[test]
fn decodes_cmyk_jpeg_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cmyk.jpg");
    // Pure cyan ink: C = 100 %, no M, Y or K.
    write_cmyk_jpeg(&path, 96, 64, [255, 0, 0, 0]);
    let img = load_image(&path).unwrap();
    assert_eq!(img.dimensions(), (96, 64));
    let p = img.get_pixel(48, 32);
    // Cyan: little red, lots of green and blue (whichever CMYK polarity the file uses, the
    // decoder must not hand back the ink values as if they were RGB).
    assert!(
        p[0] < 60 && p[1] > 190 && p[2] > 190,
        "cyan came out as {p:?}"
    );
}

/// A minimal EXIF (TIFF, little endian) block holding only an Orientation tag.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0II*\0".to_vec();
    exif.extend(8u32.to_le_bytes()); // offset of IFD0
    exif.extend(1u16.to_le_bytes()); // one entry
    exif.extend(0x0112u16.to_le_bytes()); // Orientation
    exif.extend(3u16.to_le_bytes()); // SHORT
    exif.extend(1u32.to_le_bytes()); // count
    exif.extend(u32::from(value).to_le_bytes());
    exif.extend(0u32.to_le_bytes()); // no next IFD
    exif
}

#[test]
fn applies_exif_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotated.jpg");
    // Stored landscape 160×96 with the marker top-left; orientation 6 means "rotate 90° CW
    // to display", so the upright image is 96×160 with the marker top-right.
    let card = test_card(160, 96);
    let mut encoder = jpeg_encoder::Encoder::new_file(&path, 95).unwrap();
    encoder.add_app_segment(1, &exif_orientation(6)).unwrap();
    encoder
        .encode(card.as_raw(), 160, 96, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let img = load_image(&path).unwrap();
    assert_eq!(img.dimensions(), (96, 160));
    assert!(
        close(*img.get_pixel(92, 3), [0, 255, 0], 70),
        "marker: {:?}",
        img.get_pixel(92, 3)
    );
    // The red half (stored left) is now on top.
    assert!(close(*img.get_pixel(48, 40), [220, 20, 20], 40));
}

#[test]
fn preprocessing_matches_the_reference_geometry() {
    // A 720×400 landscape portrait at 704*384 becomes 704 wide × 384 high with the resized
    // 691-pixel-wide image centred between 6 black columns on the left and 7 on the right.
    let card = RgbImage::from_pixel(720, 400, Rgb([200, 150, 100]));
    let prepared = prepare_portrait(&card, 704 * 384);
    assert_eq!((prepared.width(), prepared.height()), (704, 384));
    let frame = &prepared.frame;
    for y in [0, 200, 383] {
        for x in 0..6 {
            assert_eq!(frame.get_pixel(x, y).0, [0, 0, 0], "left pad at {x},{y}");
        }
        for x in 697..704 {
            assert_eq!(frame.get_pixel(x, y).0, [0, 0, 0], "right pad at {x},{y}");
        }
        assert_eq!(frame.get_pixel(6, y).0, [200, 150, 100]);
        assert_eq!(frame.get_pixel(696, y).0, [200, 150, 100]);
    }
    // The tensor layout: [3, H, W] in [-1, 1].
    let chw = prepared.to_signed_unit_chw();
    assert_eq!(chw.len(), 3 * 704 * 384);
    assert_eq!(chw[0], -1.0); // padded black, red plane
    let red_of_centre = chw[200 * 704 + 352];
    assert!((red_of_centre - (200.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-6);
}

#[test]
fn portrait_aspect_follows_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tall.png");
    RgbImage::from_pixel(400, 720, Rgb([9, 9, 9]))
        .save(&path)
        .unwrap();
    let prepared = load_portrait(&path, 704 * 384).unwrap();
    assert_eq!((prepared.width(), prepared.height()), (384, 704));
    assert_eq!((prepared.source_width, prepared.source_height), (400, 720));
    let square = prepare_portrait(&RgbImage::new(1000, 1000), 384 * 256);
    assert_eq!((square.width(), square.height()), (256, 256));
}
