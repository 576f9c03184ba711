//! Decoding a voice file (WAV in 8/16/24/32-bit and float, MP3, FLAC, OGG/Vorbis, M4A/AAC) to
//! mono f32 at its own sample rate, with truncated and corrupt files reported as such.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as DecodeFailure;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::error::{MediaError, read_input};

/// A decoded recording, mixed down to one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    pub sample_rate: u32,
    /// Channel count of the file before the mix-down.
    pub source_channels: u16,
    pub mono: Vec<f32>,
}

impl DecodedAudio {
    pub fn duration_seconds(&self) -> f64 {
        self.mono.len() as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// How many samples a file may fall short of its header's promise before it counts as
/// truncated: codec delay and padding (two MP3 frames) plus half a percent of rounding.
fn truncation_slack(expected: u64) -> u64 {
    2 * 1152 + expected / 200
}

/// Reads and decodes a voice file.
pub fn load_audio(path: &Path) -> Result<DecodedAudio, MediaError> {
    let bytes = read_input(path)?;
    decode_audio(path, bytes)
}

/// Decodes audio bytes; `path` names the source in errors and its extension hints the format.
pub fn decode_audio(path: &Path, bytes: Vec<u8>) -> Result<DecodedAudio, MediaError> {
    // A decoder that panics on a malformed header is a bug in that decoder, but the user's
    // answer is the same either way: this file is broken.
    catch_unwind(AssertUnwindSafe(|| decode_unguarded(path, bytes))).unwrap_or_else(|_| {
        Err(MediaError::AudioFormat {
            path: path.to_path_buf(),
            detail: "the decoder could not make sense of the file; it is probably corrupt".into(),
        })
    })
}

fn decode_unguarded(path: &Path, bytes: Vec<u8>) -> Result<DecodedAudio, MediaError> {
    let format_error = |detail: String| MediaError::AudioFormat {
        path: path.to_path_buf(),
        detail,
    };
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| format_error(format!("unrecognised or corrupt container: {e}")))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| format_error("the file has no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    match params.sample_rate {
        None | Some(0) => {
            return Err(format_error(
                "the header gives a sample rate of 0 Hz; the file is damaged".into(),
            ));
        }
        Some(_) => {}
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| format_error(format!("unsupported codec: {e}")))?;

    let mut mono = Vec::new();
    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut source_channels = 0u16;
    let (mut good_packets, mut bad_packets) = (0u64, 0u64);
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(DecodeFailure::IoError(_)) | Err(DecodeFailure::ResetRequired) => break,
            Err(DecodeFailure::DecodeError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(e) => return Err(format_error(format!("cannot read the stream: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(DecodeFailure::DecodeError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(DecodeFailure::IoError(_)) => break,
            Err(e) => return Err(format_error(format!("cannot decode: {e}"))),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        if channels == 0 || spec.rate == 0 {
            return Err(format_error("a packet declares 0 channels or 0 Hz".into()));
        }
        sample_rate = spec.rate;
        source_channels = channels as u16;
        let needed = decoded.capacity() as u64;
        let buf = match &mut buffer {
            Some(buf) if buf.capacity() as u64 >= needed * channels as u64 => buf,
            _ => buffer.insert(SampleBuffer::<f32>::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        good_packets += 1;
    }
    if good_packets == 0 {
        return Err(format_error(if bad_packets > 0 {
            "no packet could be decoded; the file is corrupt".into()
        } else {
            "the file contains no audio samples".into()
        }));
    }
    if bad_packets * 10 > good_packets + bad_packets {
        return Err(format_error(format!(
            "{bad_packets} of {} packets are damaged; the file is corrupt",
            good_packets + bad_packets
        )));
    }
    if let Some(expected) = params.n_frames {
        let found = mono.len() as u64;
        if found + truncation_slack(expected) < expected {
            return Err(MediaError::AudioTruncated {
                path: path.to_path_buf(),
                expected,
                found,
            });
        }
    }
    Ok(DecodedAudio {
        sample_rate,
        source_channels,
        mono,
    })
}
