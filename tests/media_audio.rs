//! Voice input: every supported format decodes to the right length and pitch, channels mix to
//! mono, the resampler keeps frequency and length, and the 25 fps timeline counts clips as the
//! reference does.

mod common;

use std::path::Path;

use avatar_studio::media::audio::load_audio;
use avatar_studio::media::resample::resample_mono;
use avatar_studio::media::timeline::{AudioTimeline, ConvStack};
use avatar_studio::media::voice::load_voice;
use avatar_studio::settings::{AudioSync, ClipCount};
use common::{dominant_frequency, ffmpeg, sine, write_wav};

fn assert_tone(path: &Path, rate: u32, seconds: f64, freq: u32) {
    let audio = load_audio(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(audio.sample_rate, rate, "{}", path.display());
    let expected = f64::from(rate) * seconds;
    // Lossy codecs add or trim up to a couple of codec frames of delay/padding.
    assert!(
        (audio.mono.len() as f64 - expected).abs() <= 4096.0,
        "{}: {} samples, expected about {expected}",
        path.display(),
        audio.mono.len()
    );
    let found = dominant_frequency(&audio.mono, rate, freq - 50, freq + 50);
    assert!(
        found.abs_diff(freq) <= 1,
        "{}: {found} Hz, expected {freq}",
        path.display()
    );
}

#[test]
fn decodes_every_wav_sample_format() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [8u16, 16, 24, 32, 0] {
        let path = dir.path().join(format!("tone_{bits}.wav"));
        write_wav(&path, &sine(440.0, 22_050, 1.0, 1), 22_050, 1, bits);
        assert_tone(&path, 22_050, 1.0, 440);
    }
}

#[test]
fn mixes_channels_to_mono() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stereo.wav");
    // Left carries the tone, right is silent: the mono mix is the tone at half level.
    let samples: Vec<f32> = sine(300.0, 8_000, 1.0, 1)
        .into_iter()
        .flat_map(|s| [s, 0.0])
        .collect();
    write_wav(&path, &samples, 8_000, 2, 0);
    let audio = load_audio(&path).unwrap();
    assert_eq!(audio.source_channels, 2);
    assert_eq!(audio.mono.len(), 8_000);
    let peak = audio.mono.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.25).abs() < 0.01, "peak {peak}");
}

#[test]
fn decodes_compressed_formats() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.wav");
    write_wav(&source, &sine(1000.0, 44_100, 2.0, 2), 44_100, 2, 16);
    let src = source.to_str().unwrap();
    for (name, codec_args) in [
        ("tone.mp3", vec!["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("tone.flac", vec!["-c:a", "flac"]),
        ("tone.ogg", vec!["-c:a", "libvorbis", "-q:a", "4"]),
        ("tone.m4a", vec!["-c:a", "aac", "-b:a", "128k"]),
    ] {
        let out = dir.path().join(name);
        let mut args = vec!["-i", src];
        args.extend(codec_args);
        args.push(out.to_str().unwrap());
        ffmpeg(&args);
        assert_tone(&out, 44_100, 2.0, 1000);
    }
}

#[test]
fn resampling_keeps_pitch_and_length() {
    let input = sine(1000.0, 44_100, 3.0, 1);
    let output = resample_mono(&input, 44_100, 16_000).unwrap();
    let expected = 3.0 * 16_000.0;
    assert!(
        (output.len() as f64 - expected).abs() <= 2.0,
        "{} samples, expected {expected}",
        output.len()
    );
    assert_eq!(dominant_frequency(&output, 16_000, 900, 1100), 1000);
    // The filter delay is trimmed: the tone starts at the start, not some milliseconds late.
    let head_energy: f32 = output[..160].iter().map(|s| s * s).sum();
    assert!(
        head_energy > 10.0,
        "the first 10 ms are silent: {head_energy}"
    );
    // The amplitude survives (0.5 peak in the source).
    let mid = &output[16_000..32_000];
    let peak = mid.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5).abs() < 0.02, "peak {peak}");
    // Up-sampling works the same way.
    let up = resample_mono(&input, 44_100, 48_000).unwrap();
    assert!((up.len() as f64 - 144_000.0).abs() <= 2.0, "{}", up.len());
    assert_eq!(dominant_frequency(&up, 48_000, 900, 1100), 1000);
}

#[test]
fn timeline_counts_clips_like_the_reference() {
    let conv = ConvStack::xlsr();
    // 16 000 samples: 49 wav2vec2 frames (one per 20 ms, 400-sample receptive field).
    assert_eq!(conv.output_frames(16_000), 49);
    assert_eq!(conv.output_frames(399), 0);
    assert_eq!(conv.output_frames(400), 1);
    // 10 s of speech: T50 = 499, T30 = 299, nr = int(299 / 57.6) + 1 = 6 clips.
    let t = AudioTimeline::new(160_000, 48, &conv);
    assert_eq!(
        (t.encoder_frames, t.feature_frames_30fps, t.clips_covered),
        (499, 299, 6)
    );
    assert_eq!(t.clips_to_render(ClipCount::Auto), 6);
    assert_eq!(t.clips_to_render(ClipCount::AtMost(2)), 2);
    assert_eq!(t.clips_to_render(ClipCount::AtMost(100)), 6);
    assert_eq!(t.output_frames(2), 93);
    // The file ends with the voice (the reference muxes with -shortest): 10 s = 250 frames.
    assert_eq!(t.output_frames(6), 285);
    assert_eq!(t.frames_in_file(6, AudioSync::Reference), 250);
    assert_eq!(t.frames_in_file(6, AudioSync::Aligned), 247);
    assert_eq!(t.frames_in_file(2, AudioSync::Reference), 93);
}

#[test]
fn voice_is_resampled_to_16k_with_its_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("voice.wav");
    write_wav(&path, &sine(220.0, 44_100, 4.0, 1), 44_100, 1, 16);
    let voice = load_voice(&path, 48).unwrap();
    assert!((voice.samples_16k.len() as i64 - 64_000).abs() <= 2);
    assert_eq!(voice.timeline.samples_16k, voice.samples_16k.len() as u64);
    assert_eq!(voice.timeline.clips_covered, 3);
    assert_eq!(voice.original.sample_rate, 44_100);
}
