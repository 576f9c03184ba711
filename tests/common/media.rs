//! Test media made on the spot, and ffprobe/ffmpeg to check what we write.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// A sine tone, `channels` interleaved copies.
pub fn sine(freq: f64, rate: u32, seconds: f64, channels: u16) -> Vec<f32> {
    let n = (f64::from(rate) * seconds).round() as usize;
    (0..n)
        .flat_map(|i| {
            let v = (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * 0.5;
            std::iter::repeat_n(v as f32, usize::from(channels))
        })
        .collect()
}

/// Writes interleaved samples as WAV with the given integer bit depth, or 32-bit float if
/// `bits` is 0.
pub fn write_wav(path: &Path, samples: &[f32], rate: u32, channels: u16, bits: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if bits == 0 { 32 } else { bits },
        sample_format: if bits == 0 {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        match bits {
            0 => w.write_sample(s).expect("write"),
            8 => w.write_sample((s * 127.0) as i8).expect("write"),
            16 => w.write_sample((s * 32767.0) as i16).expect("write"),
            24 => w.write_sample((s * 8_388_607.0) as i32).expect("write"),
            32 => w
                .write_sample((f64::from(s) * 2_147_483_647.0) as i32)
                .expect("write"),
            _ => panic!("unsupported bits"),
        }
    }
    w.finalize().expect("finalize wav");
}

/// Runs the ffmpeg command-line tool (installed by `.ci/run`) to make test media.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is needed by these tests; .ci/run installs it");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe's view of a file: streams (with counted frames) and format.
pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("the ffprobe CLI is needed by these tests; .ci/run installs it");
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

pub fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} stream in {probe}"))
}

pub fn num(value: &Value) -> f64 {
    match value {
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// Decodes a file's audio to mono f32 at its own rate with the ffmpeg CLI, for checking what
/// a player would hear.
pub fn decode_with_ffmpeg(path: &Path, rate: u32) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-ac", "1", "-ar", &rate.to_string(), "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Dominant frequency of a signal by a direct scan of the DFT magnitude over `lo..hi` Hz in
/// 1 Hz steps (exact enough for a pure tone, and needs no FFT crate).
pub fn dominant_frequency(samples: &[f32], rate: u32, lo: u32, hi: u32) -> u32 {
    let n = samples.len().min(rate as usize);
    let window = &samples[samples.len() / 2 - n / 2..][..n];
    (lo..=hi)
        .max_by(|&a, &b| {
            let mag = |f: u32| {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (i, &s) in window.iter().enumerate() {
                    let ph = 2.0 * std::f64::consts::PI * f64::from(f) * i as f64 / f64::from(rate);
                    re += f64::from(s) * ph.cos();
                    im += f64::from(s) * ph.sin();
                }
                re * re + im * im
            };
            mag(a).total_cmp(&mag(b))
        })
        .unwrap_or(0)
}
