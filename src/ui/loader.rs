//! Background work for the studio: decoding and preparing portraits and voices, and the native
//! file dialogs, each on its own thread so the window never waits on a file. Results come back
//! through a channel, tagged with a request number so a stale result never replaces a newer one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use image::RgbImage;

use crate::media::image::load_image;
use crate::media::portrait::{PreparedPortrait, prepare_portrait};
use crate::media::voice::{Voice, load_voice};

use super::waveform::{WaveformPeaks, peaks};

/// Which input a file or dialog is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Portrait,
    Voice,
}

const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "bmp"];
const AUDIO_EXTENSIONS: [&str; 8] = ["wav", "mp3", "flac", "ogg", "oga", "m4a", "aac", "mp4"];

impl InputKind {
    /// Guesses from the file name whether a dropped file is a portrait or a voice.
    pub fn of_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            Some(Self::Portrait)
        } else if AUDIO_EXTENSIONS.contains(&ext.as_str()) {
            Some(Self::Voice)
        } else {
            None
        }
    }

    fn dialog_filter(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::Portrait => ("Images", &IMAGE_EXTENSIONS),
            Self::Voice => ("Audio", &AUDIO_EXTENSIONS),
        }
    }
}

/// What a finished background job hands back.
pub enum Loaded {
    Portrait {
        request: u64,
        path: PathBuf,
        decoded: Arc<RgbImage>,
        prepared: PreparedPortrait,
        area: u64,
    },
    Voice {
        request: u64,
        path: PathBuf,
        voice: Arc<Voice>,
        peaks: WaveformPeaks,
    },
    Failed {
        request: u64,
        kind: InputKind,
        /// Names the file.
        error: String,
    },
    Picked {
        kind: InputKind,
        path: PathBuf,
    },
    /// The header check of a model folder (and LoRA): `Ok` with a one-line description, or
    /// the first problem.
    Inspected {
        folder: PathBuf,
        lora: Option<PathBuf>,
        outcome: Result<String, String>,
    },
    /// A model folder, LoRA file or output folder chosen in a dialog.
    PickedPath {
        target: PickTarget,
        path: PathBuf,
    },
}

/// What a path dialog is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickTarget {
    ModelFolder,
    LoraFile,
    OutputFolder,
}

/// Columns of waveform detail kept per voice; the panel draws at most this many.
const WAVEFORM_BUCKETS: usize = 1200;

pub struct Loader {
    sender: Sender<Loaded>,
    receiver: Receiver<Loaded>,
    repaint: egui::Context,
    next_request: u64,
}

impl Loader {
    pub fn new(repaint: egui::Context) -> Self {
        let (sender, receiver) = channel();
        Self {
            sender,
            receiver,
            repaint,
            next_request: 0,
        }
    }

    fn spawn(&self, job: impl FnOnce() -> Loaded + Send + 'static) {
        let sender = self.sender.clone();
        let repaint = self.repaint.clone();
        std::thread::spawn(move || {
            // The receiver only goes away when the studio closes; nothing to report then.
            let _ = sender.send(job());
            repaint.request_repaint();
        });
    }

    fn next(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// Decodes a portrait file and prepares it for `area`; returns the request number.
    pub fn load_portrait(&mut self, path: PathBuf, area: u64) -> u64 {
        let request = self.next();
        self.spawn(move || match load_image(&path) {
            Ok(decoded) => Loaded::Portrait {
                request,
                prepared: prepare_portrait(&decoded, area),
                decoded: Arc::new(decoded),
                path,
                area,
            },
            Err(e) => Loaded::Failed {
                request,
                kind: InputKind::Portrait,
                error: e.to_string(),
            },
        });
        request
    }

    /// Re-frames an already decoded portrait for a new size area.
    pub fn reframe_portrait(&mut self, path: PathBuf, decoded: Arc<RgbImage>, area: u64) -> u64 {
        let request = self.next();
        self.spawn(move || Loaded::Portrait {
            request,
            prepared: prepare_portrait(&decoded, area),
            decoded,
            path,
            area,
        });
        request
    }

    pub fn load_voice(&mut self, path: PathBuf, frames_per_clip: u32) -> u64 {
        let request = self.next();
        self.spawn(move || match load_voice(&path, frames_per_clip) {
            Ok(voice) => Loaded::Voice {
                request,
                peaks: peaks(&voice.original.mono, WAVEFORM_BUCKETS),
                voice: Arc::new(voice),
                path,
            },
            Err(e) => Loaded::Failed {
                request,
                kind: InputKind::Voice,
                error: e.to_string(),
            },
        });
        request
    }

    /// Opens the native file dialog for `kind` without blocking the window.
    pub fn pick_file(&self, kind: InputKind) {
        let sender = self.sender.clone();
        let repaint = self.repaint.clone();
        std::thread::spawn(move || {
            let (name, extensions) = kind.dialog_filter();
            let dialog = rfd::AsyncFileDialog::new().add_filter(name, extensions);
            if let Some(file) = pollster::block_on(dialog.pick_file()) {
                let _ = sender.send(Loaded::Picked {
                    kind,
                    path: file.path().to_path_buf(),
                });
                repaint.request_repaint();
            }
        });
    }

    /// Checks a checkpoint folder from its headers (what `inspect` prints), off the UI thread.
    pub fn inspect_model(&self, folder: PathBuf, lora: Option<PathBuf>) {
        self.spawn(move || {
            use crate::weights::folder_report::{EncoderConfigs, inspect_folder};
            let outcome = match inspect_folder(&folder, lora.as_deref(), &EncoderConfigs::default())
            {
                Err(e) => Err(e.to_string()),
                Ok(report) => match report.summary_line() {
                    Some(problem) => Err(problem),
                    None => Ok(format!(
                        "checkpoint complete: DiT, umT5, VAE, wav2vec2 and tokenizer found{}",
                        if lora.is_some() { ", LoRA matches" } else { "" }
                    )),
                },
            };
            Loaded::Inspected {
                folder,
                lora,
                outcome,
            }
        });
    }

    /// Opens a folder or LoRA dialog for `target` without blocking the window.
    pub fn pick_path(&self, target: PickTarget) {
        let sender = self.sender.clone();
        let repaint = self.repaint.clone();
        std::thread::spawn(move || {
            let dialog = rfd::AsyncFileDialog::new();
            let picked = match target {
                PickTarget::ModelFolder | PickTarget::OutputFolder => {
                    pollster::block_on(dialog.pick_folder())
                }
                PickTarget::LoraFile => pollster::block_on(
                    dialog
                        .add_filter("LoRA (safetensors)", &["safetensors"])
                        .pick_file(),
                ),
            };
            if let Some(handle) = picked {
                let _ = sender.send(Loaded::PickedPath {
                    target,
                    path: handle.path().to_path_buf(),
                });
                repaint.request_repaint();
            }
        });
    }

    /// Everything that finished since the last call.
    pub fn poll(&self) -> Vec<Loaded> {
        self.receiver.try_iter().collect()
    }
}
