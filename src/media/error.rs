//! The one error type of the media room. Every variant names the file it is about and says what
//! the user can do, because these messages reach the studio and the CLI verbatim.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{path}: file not found; check the path")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot read the file ({source})")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: the file is empty (0 bytes)")]
    Empty { path: PathBuf },
    #[error("{path}: not a usable image ({detail}); use a PNG, JPEG, WebP or BMP file")]
    ImageFormat { path: PathBuf, detail: String },
    #[error(
        "{path}: the image is {width}×{height} pixels; it must be at least {min}×{min} \
         (a portrait of 512 pixels or more looks best)"
    )]
    ImageTooSmall {
        path: PathBuf,
        width: u32,
        height: u32,
        min: u32,
    },
    #[error(
        "{path}: the image is {width}×{height} pixels, over the limit of {max} pixels per side; \
         downscale it first"
    )]
    ImageTooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max: u32,
    },
    #[error(
        "{path}: not a usable audio file ({detail}); use WAV, MP3, FLAC, OGG/Vorbis or M4A/AAC"
    )]
    AudioFormat { path: PathBuf, detail: String },
    #[error(
        "{path}: the audio is {seconds:.2} s long; at least {min_seconds:.2} s of speech is needed \
         (one block of video)"
    )]
    AudioTooShort {
        path: PathBuf,
        seconds: f64,
        min_seconds: f64,
    },
    #[error(
        "{path}: the audio is truncated: its header promises {expected} samples but only {found} \
         are there; re-export or re-download it"
    )]
    AudioTruncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("resampling audio from {from} Hz to {to} Hz failed: {detail}")]
    Resample { from: u32, to: u32, detail: String },
    #[error("{path}: the folder {dir} does not exist; create it or choose another output path")]
    OutputDirMissing { path: PathBuf, dir: PathBuf },
    #[error("{path}: cannot write there ({source}); choose a folder you can write to")]
    OutputNotWritable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {detail}")]
    OutputInvalid { path: PathBuf, detail: String },
    #[error("{path}: video encoding failed: {detail}")]
    Encode { path: PathBuf, detail: String },
    #[error(
        "frame {index} is {width}×{height} with {len} bytes; expected {expected_width}×{expected_height} RGB"
    )]
    FrameShape {
        index: u64,
        width: u32,
        height: u32,
        len: usize,
        expected_width: u32,
        expected_height: u32,
    },
}

/// Reads a whole input file, turning the common failures into the messages users need.
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, MediaError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            MediaError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            MediaError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if bytes.is_empty() {
        return Err(MediaError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}
