//! The `check` command through the real binary: a summary for good inputs (text and JSON), the
//! reference's flag spellings, and a one-line error with exit code 2 for each kind of bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{sine, write_wav};
use image::{Rgb, RgbImage};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avatar-studio"))
        .args(args)
        .output()
        .expect("run avatar-studio")
}

fn inputs(dir: &Path) -> (String, String) {
    let image = dir.join("face.png");
    RgbImage::from_pixel(720, 400, Rgb([120, 90, 70]))
        .save(&image)
        .unwrap();
    let audio = dir.join("voice.wav");
    write_wav(&audio, &sine(200.0, 24_000, 5.0, 1), 24_000, 1, 16);
    (image.display().to_string(), audio.display().to_string())
}

#[test]
fn check_reports_what_the_render_will_be() {
    let dir = tempfile::tempdir().unwrap();
    let (image, audio) = inputs(dir.path());
    let out = run(&[
        "check", "--image", &image, "--audio", &audio, "--size", "704*384", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["width"].as_u64(), summary["height"].as_u64()),
        (Some(704), Some(384))
    );
    // 5 s: T50 = 249, T30 = 149, nr = int(149 / 57.6) + 1 = 3 clips, 3·48 − 3 frames made;
    // the file ends with the voice, at 5 s · 25 fps = 125 frames.
    assert_eq!(summary["clips_covered"], 3);
    assert_eq!(summary["clips"], 3);
    assert_eq!(summary["frames_generated"], 141);
    assert_eq!(summary["frames"], 125);
    let aligned = run(&[
        "check",
        "--image",
        &image,
        "--audio",
        &audio,
        "--audio-sync",
        "aligned",
        "--json",
    ]);
    let aligned: serde_json::Value = serde_json::from_slice(&aligned.stdout).unwrap();
    assert_eq!(
        aligned["frames"], 122,
        "the aligned sound skips the 3 dropped frames"
    );

    let text = run(&[
        "check",
        "--image",
        &image,
        "--audio",
        &audio,
        "--preset",
        "quick preview",
    ]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("frames of 384×256"), "{text}");
}

#[test]
fn reference_flag_spellings_work() {
    let dir = tempfile::tempdir().unwrap();
    let (image, audio) = inputs(dir.path());
    let out = run(&[
        "check",
        "--image",
        &image,
        "--audio",
        &audio,
        "--size",
        "720*400",
        "--num_clip",
        "2",
        "--sample_steps",
        "4",
        "--infer_frames",
        "48",
        "--base_seed",
        "-1",
        "--enable_online_decode",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["clips"], 2);
    assert_eq!(summary["frames_generated"], 93);
    assert_eq!(summary["frames"], 93, "the voice outlasts two clips");
    assert_eq!(
        summary["width"], 704,
        "720*400 is an area: 16:9 input gives 384×704"
    );
}

fn assert_bad_input(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let (image, audio) = inputs(dir.path());
    let missing = dir.path().join("missing.png").display().to_string();
    assert_bad_input(
        &run(&["check", "--image", &missing, "--audio", &audio]),
        "missing.png: file not found",
    );

    let notes = dir.path().join("notes.png");
    std::fs::write(&notes, "not an image").unwrap();
    let notes = notes.display().to_string();
    assert_bad_input(
        &run(&["check", "--image", &notes, "--audio", &audio]),
        "not a usable image",
    );

    let short = dir.path().join("short.wav");
    write_wav(&short, &sine(200.0, 16_000, 0.1, 1), 16_000, 1, 16);
    let short = short.display().to_string();
    assert_bad_input(
        &run(&["check", "--image", &image, "--audio", &short]),
        "0.10 s",
    );

    assert_bad_input(
        &run(&[
            "check",
            "--image",
            &image,
            "--audio",
            &audio,
            "--sample-steps",
            "9",
        ]),
        "setting `sample_steps`",
    );
    assert_bad_input(
        &run(&[
            "check",
            "--image",
            &image,
            "--audio",
            &audio,
            "--preset",
            "cinematic",
        ]),
        "no preset `cinematic`",
    );
    let out_path = dir.path().join("gone/out.mp4").display().to_string();
    assert_bad_input(
        &run(&[
            "check", "--image", &image, "--audio", &audio, "--out", &out_path,
        ]),
        "does not exist",
    );
}
