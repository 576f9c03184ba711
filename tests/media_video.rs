//! Video out: the MP4 round trip checked with ffprobe (codecs, 25 fps, frame count, audio
//! length), a writer killed mid-render leaving a playable file, and the PNG + WAV export.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use avatar_studio::media::export::{PngSequenceWriter, WAV_NAME, frame_file_name};
use avatar_studio::media::frame::{FrameSink, RgbFrame};
use avatar_studio::media::soundtrack::{OUTPUT_SAMPLE_RATE, Soundtrack};
use avatar_studio::media::video::{Mp4Options, Mp4Writer};
use common::{decode_with_ffmpeg, dominant_frequency, ffprobe, num, sine, stream};

const W: u32 = 128;
const H: u32 = 64;

/// Frame `i` of a moving test pattern (a bar sweeping across a gradient).
fn pattern(i: u64) -> RgbFrame {
    let mut rgb = Vec::with_capacity((3 * W * H) as usize);
    for y in 0..H {
        for x in 0..W {
            let bar = (x as u64 + 128 - (i * 3) % 128) % 128 < 12;
            rgb.extend(if bar {
                [255, 255, 255]
            } else {
                [(x * 2) as u8, (y * 4) as u8, 90]
            });
        }
    }
    RgbFrame {
        width: W,
        height: H,
        rgb,
    }
}

fn blocks(total: u64, first: u64) -> Vec<Vec<RgbFrame>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = first;
    while start < total {
        let end = (start + size).min(total);
        out.push((start..end).map(pattern).collect());
        start = end;
        size = 12;
    }
    out
}

fn tone_track(seconds: f64) -> Soundtrack {
    Soundtrack::from_samples(sine(440.0, OUTPUT_SAMPLE_RATE, seconds, 1))
}

#[test]
fn mp4_round_trip_has_h264_aac_25fps_and_synced_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two_clips.mp4");
    let options = Mp4Options {
        crf: 18,
        title: Some("avatar-studio test".into()),
        // Longer than the video: the track must be cut to the picture.
        soundtrack: Some(tone_track(6.0)),
    };
    let mut writer: Box<dyn FrameSink> = Box::new(Mp4Writer::create(&path, W, H, options).unwrap());
    // Two clips of 48 frames minus the 3 dropped lead frames, in blocks of 12.
    for block in blocks(93, 9) {
        writer.write_frames(&block).unwrap();
    }
    assert_eq!(writer.frames_written(), 93);
    assert_eq!(writer.finish().unwrap(), path);
    if std::env::var("KEEP").is_ok() {
        std::fs::copy(&path, "/tmp/rt.mp4").unwrap();
    }

    let probe = ffprobe(&path);
    let video = stream(&probe, "video");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["avg_frame_rate"], "25/1");
    assert_eq!(video["r_frame_rate"], "25/1");
    assert_eq!(num(&video["nb_read_frames"]), 93.0);
    assert_eq!(
        (num(&video["width"]), num(&video["height"])),
        (f64::from(W), f64::from(H))
    );
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(num(&audio["sample_rate"]), f64::from(OUTPUT_SAMPLE_RATE));
    let video_seconds = 93.0 / 25.0;
    let audio_seconds = num(&audio["duration"]);
    assert!(
        (audio_seconds - video_seconds).abs() <= 1.0 / 25.0,
        "audio {audio_seconds} s vs video {video_seconds} s"
    );
    assert_eq!(probe["format"]["tags"]["title"], "avatar-studio test");
    // What a player hears is the tone, over the whole length.
    let heard = decode_with_ffmpeg(&path, 16_000);
    assert!((heard.len() as f64 / 16_000.0 - video_seconds).abs() <= 1.0 / 25.0);
    assert_eq!(dominant_frequency(&heard, 16_000, 400, 480), 440);
}

#[test]
fn short_audio_is_padded_with_silence_to_the_video_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short_audio.mp4");
    let options = Mp4Options {
        crf: 23,
        title: None,
        soundtrack: Some(tone_track(1.0)),
    };
    let mut writer = Box::new(Mp4Writer::create(&path, W, H, options).unwrap());
    for block in blocks(60, 12) {
        writer.write_frames(&block).unwrap();
    }
    writer.finish().unwrap();
    let probe = ffprobe(&path);
    let audio_seconds = num(&stream(&probe, "audio")["duration"]);
    assert!((audio_seconds - 2.4).abs() <= 0.04, "audio {audio_seconds}");
    let heard = decode_with_ffmpeg(&path, 16_000);
    let tail: f32 = heard[heard.len() - 8_000..].iter().map(|s| s.abs()).sum();
    assert!(
        tail < 5.0,
        "the padding after the voice should be silent, got {tail}"
    );
}

#[test]
fn a_dropped_writer_still_completes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.mp4");
    {
        let mut writer = Mp4Writer::create(&path, W, H, Mp4Options::default()).unwrap();
        for block in blocks(24, 12) {
            writer.write_frames(&block).unwrap();
        }
    }
    let probe = ffprobe(&path);
    assert_eq!(num(&stream(&probe, "video")["nb_read_frames"]), 24.0);
}

const CHILD_ENV: &str = "AVATAR_STUDIO_KILL_TEST_OUT";

/// Not a test on its own: the child process of `killed_writer_leaves_a_playable_file`. It
/// writes two clips, says so, and waits to be killed.
#[test]
#[ignore = "run by killed_writer_leaves_a_playable_file as a child process"]
fn kill_test_child() {
    let Ok(out) = std::env::var(CHILD_ENV) else {
        return;
    };
    let options = Mp4Options {
        crf: 23,
        title: None,
        soundtrack: Some(tone_track(30.0)),
    };
    let mut writer = Mp4Writer::create(Path::new(&out), W, H, options).unwrap();
    for (i, block) in blocks(96, 12).into_iter().enumerate() {
        writer.write_frames(&block).unwrap();
        println!("WROTE {}", (i + 1) * 12);
    }
    println!("CLIPS DONE");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn killed_writer_leaves_a_playable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.mp4");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_test_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains("CLIPS DONE") {
            done = true;
            break;
        }
        assert!(Instant::now() < deadline, "child too slow");
    }
    assert!(done, "the child process did not write its clips");
    // SIGKILL: no destructor, no trailer, nothing but what is already on disk.
    child.kill().unwrap();
    child.wait().unwrap();

    let probe = ffprobe(&path);
    let video = stream(&probe, "video");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        num(&video["nb_read_frames"]),
        96.0,
        "every written frame survives"
    );
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "aac");
    // The audio of the last block may still sit in the AAC encoder's one-frame delay.
    let audio_seconds = num(&audio["duration"]);
    assert!(audio_seconds > 96.0 / 25.0 - 0.1, "audio {audio_seconds}");
}

#[test]
fn png_sequence_and_wav_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames");
    let mut writer =
        Box::new(PngSequenceWriter::create(&out, W, H, Some(tone_track(10.0))).unwrap());
    for block in blocks(30, 12) {
        writer.write_frames(&block).unwrap();
    }
    // The WAV is valid before finish too (a cancelled export keeps its sound).
    let wav = hound::WavReader::open(out.join(WAV_NAME)).unwrap();
    assert_eq!(wav.duration(), 30 * OUTPUT_SAMPLE_RATE / 25);
    assert_eq!(writer.finish().unwrap(), out);
    for i in 0..30 {
        let frame = image::open(out.join(frame_file_name(i))).unwrap().to_rgb8();
        assert_eq!(frame.as_raw(), &pattern(i).rgb, "frame {i} is lossless");
    }
    assert!(!out.join(frame_file_name(30)).exists());
    let wav = hound::WavReader::open(out.join(WAV_NAME)).unwrap();
    assert_eq!(wav.spec().sample_rate, OUTPUT_SAMPLE_RATE);
    assert_eq!(wav.duration(), 30 * OUTPUT_SAMPLE_RATE / 25);
}

#[test]
fn frames_convert_from_model_output_by_truncation() {
    // [3, 1, 2] planar: red plane (-1, 1), green (0, 0.5), blue (2, -2) clamped.
    let values = [-1.0, 1.0, 0.0, 0.5, 2.0, -2.0];
    let frame = RgbFrame::from_signed_unit_chw(&values, 2, 1).unwrap();
    // (0 + 1) / 2 · 255 = 127.5 → 127; (0.5 + 1) / 2 · 255 = 191.25 → 191.
    assert_eq!(frame.rgb, vec![0, 127, 255, 255, 191, 0]);
    assert!(RgbFrame::from_signed_unit_chw(&values, 3, 1).is_none());
}
