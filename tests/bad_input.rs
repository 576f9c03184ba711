//! Every bad input the foundation issue lists gets an error that names the file and says what
//! is wrong: never a panic, never a silently accepted broken file, never a half-made output.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use avatar_studio::media::MediaError;
use avatar_studio::media::audio::load_audio;
use avatar_studio::media::export::PngSequenceWriter;
use avatar_studio::media::image::load_image;
use avatar_studio::media::output_path::check_output_file;
use avatar_studio::media::video::{Mp4Options, Mp4Writer};
use avatar_studio::media::voice::load_voice;
use common::{ffmpeg, sine, write_wav};
use image::{ImageFormat, Rgb, RgbImage};

fn image_error(path: &Path) -> String {
    let err = match load_image(path) {
        Ok(img) => panic!(
            "{}: a bad image was accepted as {:?}",
            path.display(),
            img.dimensions()
        ),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "message lacks the path: {text}"
    );
    text
}

fn voice_error(path: &Path) -> String {
    let err = match load_voice(path, 48) {
        Ok(v) => panic!(
            "{}: a bad voice was accepted ({} s)",
            path.display(),
            v.timeline.duration_seconds()
        ),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "message lacks the path: {text}"
    );
    text
}

fn good_png(dir: &Path) -> PathBuf {
    let path = dir.join("good.png");
    RgbImage::from_pixel(200, 120, Rgb([10, 200, 30]))
        .save(&path)
        .unwrap();
    path
}

fn good_jpeg(dir: &Path) -> PathBuf {
    let path = dir.join("good.jpg");
    RgbImage::from_fn(256, 256, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]))
        .save_with_format(&path, ImageFormat::Jpeg)
        .unwrap();
    path
}

#[test]
fn missing_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.png");
    assert!(matches!(
        load_image(&missing),
        Err(MediaError::NotFound { .. })
    ));
    assert!(image_error(&missing).contains("not found"));
    let missing_audio = dir.path().join("nope.wav");
    assert!(voice_error(&missing_audio).contains("not found"));

    let empty = dir.path().join("empty.png");
    fs::write(&empty, b"").unwrap();
    assert!(image_error(&empty).contains("empty"));
    let empty_audio = dir.path().join("empty.mp3");
    fs::write(&empty_audio, b"").unwrap();
    assert!(voice_error(&empty_audio).contains("empty"));
}

#[test]
fn truncated_and_corrupt_images() {
    let dir = tempfile::tempdir().unwrap();
    for good in [good_png(dir.path()), good_jpeg(dir.path())] {
        let bytes = fs::read(&good).unwrap();
        let ext = good.extension().unwrap().to_str().unwrap().to_string();

        let truncated = dir.path().join(format!("truncated.{ext}"));
        fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let text = image_error(&truncated);
        assert!(text.contains("not a usable image"), "{text}");

        // Keep the header, scramble the compressed data.
        let mut corrupt = bytes.clone();
        for b in corrupt.iter_mut().skip(bytes.len() / 3).step_by(7) {
            *b ^= 0x5A;
        }
        let corrupt_path = dir.path().join(format!("corrupt.{ext}"));
        fs::write(&corrupt_path, &corrupt).unwrap();
        // A JPEG with scrambled entropy data can still decode to garbage pixels (as in every
        // viewer); what must never happen is a panic. PNG's checksums catch it.
        match load_image(&corrupt_path) {
            Ok(img) => assert_eq!(ext, "jpg", "corrupt {ext} accepted: {:?}", img.dimensions()),
            Err(e) => assert!(e.to_string().contains(&corrupt_path.display().to_string())),
        }
    }
}

#[test]
fn text_file_renamed_png() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.png");
    fs::write(&path, "These are my meeting notes, not a picture.\n").unwrap();
    let text = image_error(&path);
    assert!(text.contains("not PNG, JPEG, WebP or BMP"), "{text}");
}

/// A PNG whose header claims `w × h` pixels, with one tiny IDAT: enough for a decoder to read
/// the size, and far from enough data for those pixels.
fn png_with_header_size(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend(kind);
        out.extend(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend(crc.finalize().to_be_bytes());
        out
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn images_too_small_or_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.png");
    RgbImage::new(1, 1).save(&tiny).unwrap();
    let text = image_error(&tiny);
    assert!(text.contains("1×1") && text.contains("at least"), "{text}");

    let huge = dir.path().join("huge.png");
    fs::write(&huge, png_with_header_size(20_000, 20_000)).unwrap();
    let text = image_error(&huge);
    assert!(
        text.contains("20000×20000") && text.contains("downscale"),
        "{text}"
    );
}

#[test]
fn truncated_and_corrupt_audio() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("voice.wav");
    write_wav(&wav, &sine(300.0, 16_000, 3.0, 1), 16_000, 1, 16);
    let bytes = fs::read(&wav).unwrap();
    let truncated = dir.path().join("truncated.wav");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = voice_error(&truncated);
    assert!(text.contains("truncated"), "{text}");

    let mp3 = dir.path().join("voice.mp3");
    ffmpeg(&[
        "-i",
        wav.to_str().unwrap(),
        "-c:a",
        "libmp3lame",
        "-b:a",
        "64k",
        mp3.to_str().unwrap(),
    ]);
    let bytes = fs::read(&mp3).unwrap();
    let truncated_mp3 = dir.path().join("truncated.mp3");
    fs::write(&truncated_mp3, &bytes[..bytes.len() / 2]).unwrap();
    let text = voice_error(&truncated_mp3);
    assert!(text.contains("truncated"), "{text}");

    let garbage = dir.path().join("garbage.mp3");
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&garbage, noise).unwrap();
    let text = voice_error(&garbage);
    assert!(text.contains("not a usable audio file"), "{text}");

    let text_file = dir.path().join("lyrics.wav");
    fs::write(&text_file, "la la la\n".repeat(100)).unwrap();
    assert!(voice_error(&text_file).contains("not a usable audio file"));
}

#[test]
fn audio_of_zero_or_a_tenth_of_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.wav");
    write_wav(&zero, &[], 16_000, 1, 16);
    let text = voice_error(&zero);
    assert!(
        text.contains("no audio samples") || text.contains("0.00 s"),
        "{text}"
    );

    let tenth = dir.path().join("tenth.wav");
    write_wav(&tenth, &sine(300.0, 16_000, 0.1, 1), 16_000, 1, 16);
    let text = voice_error(&tenth);
    assert!(
        text.contains("0.10 s") && text.contains("at least 0.48 s"),
        "{text}"
    );
}

#[test]
fn wav_with_a_sample_rate_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wav");
    write_wav(&good, &sine(300.0, 16_000, 1.0, 1), 16_000, 1, 16);
    let mut bytes = fs::read(&good).unwrap();
    // RIFF header: the fmt chunk's sample rate is the u32 at byte 24, byte rate at 28.
    bytes[24..32].fill(0);
    let broken = dir.path().join("rate0.wav");
    fs::write(&broken, bytes).unwrap();
    let text = voice_error(&broken);
    assert!(
        text.contains("0 Hz") || text.contains("not a usable audio file"),
        "{text}"
    );
    assert!(matches!(
        load_audio(&broken),
        Err(MediaError::AudioFormat { .. })
    ));
}

#[test]
fn output_in_missing_or_read_only_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder/out.mp4");
    let err = check_output_file(&missing).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = Mp4Writer::create(&missing, 64, 64, Mp4Options::default())
        .err()
        .unwrap();
    assert!(matches!(err, MediaError::OutputDirMissing { .. }), "{err}");
    assert!(!missing.exists());

    let read_only = read_only_dir(dir.path());
    let target = read_only.join("out.mp4");
    let err = Mp4Writer::create(&target, 64, 64, Mp4Options::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("cannot write there"), "{err}");
    assert!(!target.exists());
    let err = PngSequenceWriter::create(&read_only.join("frames"), 64, 64, None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("cannot write there"), "{err}");

    let folder_as_file = dir.path().to_path_buf();
    let err = check_output_file(&folder_as_file).unwrap_err();
    assert!(err.to_string().contains("is a folder"), "{err}");
}

/// A folder the test process cannot write to. Permission bits stop a normal user; CI runs as
/// root, which ignores them, so fall back to a read-only file system the kernel provides.
fn read_only_dir(base: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = base.join("read_only");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(dir.join("probe"), b"x").is_err() {
        return dir;
    }
    let _ = fs::remove_file(dir.join("probe"));
    let proc_dir = PathBuf::from("/proc/self");
    assert!(
        fs::write(proc_dir.join("probe"), b"x").is_err(),
        "no read-only folder found"
    );
    proc_dir
}
