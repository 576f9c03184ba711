//! The studio's state and frame loop: the inputs being prepared, the settings and presets, the
//! session that persists across restarts, file drops, and the layout that places the panels.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::media::portrait::PreparedPortrait;
use crate::media::timeline::{AudioTimeline, ConvStack};
use crate::media::voice::Voice;
use crate::memory::monitor::MemoryMonitor;
use crate::settings::GenerationSettings;
use crate::settings::presets::{Preset, PresetStore};

use super::loader::{InputKind, Loaded, Loader, PickTarget};
use super::render_state::{HistoryEntry, RenderState};
use super::waveform::WaveformPeaks;

const SESSION_KEY: &str = "avatar-studio-session";
/// How often the GPU gauges refresh.
const MEMORY_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the studio keeps its files; tests point these at temporary folders.
#[derive(Debug, Clone)]
pub struct StudioOptions {
    pub preset_dir: PathBuf,
    /// Reopen the last session's files and settings.
    pub restore_session: bool,
    /// Files to open at start (portraits and voices, told apart by extension).
    pub open_files: Vec<PathBuf>,
    /// Write renders here instead of the session's output folder.
    pub output_dir: Option<PathBuf>,
    /// Plan as if the host had this much RAM (bytes) instead of reading `/proc/meminfo`, so
    /// snapshot tests look the same on every machine.
    pub assume_host_ram: Option<u64>,
}

impl Default for StudioOptions {
    fn default() -> Self {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            preset_dir: config.join("avatar-studio").join("presets"),
            restore_session: true,
            open_files: Vec::new(),
            output_dir: None,
            assume_host_ram: None,
        }
    }
}

/// What survives a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    pub settings: GenerationSettings,
    pub image: Option<PathBuf>,
    pub audio: Option<PathBuf>,
    pub dark_mode: bool,
    /// The preset the settings came from, if they have not been edited since.
    pub preset: Option<String>,
    /// The Wan2.2-S2V-14B folder; `None` renders with the built-in demo weights.
    pub model_folder: Option<PathBuf>,
    pub lora: Option<PathBuf>,
    /// Where renders are written.
    pub output_dir: PathBuf,
    /// PNG frames + WAV instead of an MP4.
    pub export_png: bool,
    /// Finished renders, newest first.
    pub history: Vec<HistoryEntry>,
    /// Renders that were running or waiting when the studio closed, offered again at start.
    pub pending_jobs: Vec<super::render_state::JobSpec>,
}

/// `~/Videos/Avatar Studio`, or `./output` without a home folder.
fn default_output_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from("output"),
        |home| PathBuf::from(home).join("Videos").join("Avatar Studio"),
    )
}

impl Default for Session {
    fn default() -> Self {
        Self {
            settings: GenerationSettings::default(),
            image: None,
            audio: None,
            dark_mode: true,
            preset: Some("standard".into()),
            model_folder: None,
            lora: None,
            output_dir: default_output_dir(),
            export_png: false,
            history: Vec::new(),
            pending_jobs: Vec::new(),
        }
    }
}

/// One input's state as the user sees it.
pub enum Slot<T> {
    Empty,
    Loading {
        path: PathBuf,
    },
    Ready(T),
    /// The message names the file.
    Failed {
        error: String,
    },
}

impl<T> Slot<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Self::Ready(value) => Some(value),
            _ => None,
        }
    }
}

pub struct PortraitView {
    pub path: PathBuf,
    pub decoded: Arc<RgbImage>,
    pub prepared: PreparedPortrait,
    pub area: u64,
    pub texture: egui::TextureHandle,
}

pub struct VoiceView {
    pub path: PathBuf,
    pub voice: Arc<Voice>,
    pub peaks: std::sync::Arc<WaveformPeaks>,
}

impl VoiceView {
    /// The voice's timeline for the current clip length (cheap: arithmetic on the length).
    pub fn timeline(&self, frames_per_clip: u32) -> AudioTimeline {
        AudioTimeline::new(
            self.voice.samples_16k.len() as u64,
            frames_per_clip,
            &ConvStack::xlsr(),
        )
    }
}

/// A short message under the top bar: what just happened, or what went wrong.
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

pub struct StudioApp {
    pub(super) session: Session,
    pub(super) presets: PresetStore,
    pub(super) preset_list: Vec<Preset>,
    pub(super) preset_problems: Vec<String>,
    pub(super) preset_name_input: String,
    pub(super) portrait: Slot<PortraitView>,
    pub(super) voice: Slot<VoiceView>,
    pub(super) notice: Option<Notice>,
    pub(super) memory: MemoryMonitor,
    pub(super) loader: Loader,
    pub(super) render: RenderState,
    /// The central area shows the preview (else the settings).
    pub(super) show_preview: bool,
    pub(super) preview_texture: Option<egui::TextureHandle>,
    /// The header check of the chosen model folder: `Ok(summary)` or the first problem.
    pub(super) model_check: Option<Result<String, String>>,
    /// The memory plan of the current settings, with the key it was made for.
    pub(super) plan_cache: std::cell::RefCell<Option<(String, crate::memory::MemoryPlan)>>,
    pub(super) assume_host_ram: Option<u64>,
    /// The last host RAM reading for the plan, and when it was taken.
    pub(super) host_ram_reading: std::cell::Cell<Option<(std::time::Instant, u64)>>,
    /// The waveform is drawn by its WGSL shader (the window renders with wgpu).
    pub(super) shader_waveform: bool,
    /// Textures of the history's thumbnails, by render and finish time.
    pub(super) history_textures:
        std::collections::HashMap<(std::path::PathBuf, u64), egui::TextureHandle>,
    /// Renders left waiting by the last run, until the user queues them again or discards them.
    pub(super) offered_jobs: Vec<super::render_state::JobSpec>,
    /// Restored jobs whose files are being read.
    pub(super) restoring: Option<
        std::sync::mpsc::Receiver<(
            Result<crate::engine::Job, String>,
            super::render_state::JobSpec,
        )>,
    >,
    /// The preview player's sound.
    pub(super) sound: super::sound::SoundOut,
    portrait_request: u64,
    voice_request: u64,
}

impl StudioApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StudioOptions) -> Self {
        let mut session = if options.restore_session {
            cc.storage
                .and_then(|s| eframe::get_value::<Session>(s, SESSION_KEY))
                .unwrap_or_default()
        } else {
            Session::default()
        };
        let offered_jobs = std::mem::take(&mut session.pending_jobs);
        let mut app = Self {
            presets: PresetStore::new(options.preset_dir.clone()),
            preset_list: Vec::new(),
            preset_problems: Vec::new(),
            preset_name_input: String::new(),
            portrait: Slot::Empty,
            voice: Slot::Empty,
            notice: None,
            memory: {
                let repaint = cc.egui_ctx.clone();
                MemoryMonitor::start(MEMORY_SAMPLE_INTERVAL, move || repaint.request_repaint())
            },
            loader: Loader::new(cc.egui_ctx.clone()),
            render: RenderState::default(),
            show_preview: false,
            preview_texture: None,
            model_check: None,
            plan_cache: Default::default(),
            history_textures: Default::default(),
            restoring: None,
            offered_jobs,
            assume_host_ram: options.assume_host_ram,
            host_ram_reading: Default::default(),
            shader_waveform: super::waveform_gpu::install(cc.wgpu_render_state.as_ref()),
            sound: super::sound::SoundOut::open_default(f64::from(crate::settings::FPS)),
            portrait_request: 0,
            voice_request: 0,
            session,
        };
        if let Some(dir) = options.output_dir {
            app.session.output_dir = dir;
        }
        app.apply_theme(&cc.egui_ctx);
        app.refresh_presets();
        if let Some(path) = app.session.image.clone() {
            app.open_input(InputKind::Portrait, path);
        }
        if let Some(path) = app.session.audio.clone() {
            app.open_input(InputKind::Voice, path);
        }
        app.open_paths(options.open_files);
        app.check_model();
        app
    }

    /// Renders with this checkpoint folder (and LoRA); `None` = the demo weights.
    pub fn choose_model(&mut self, folder: Option<PathBuf>, lora: Option<PathBuf>) {
        self.session.model_folder = folder;
        self.session.lora = lora;
        self.check_model();
    }

    /// Starts the header check of the chosen model folder (nothing to check for the demo).
    pub(super) fn check_model(&mut self) {
        self.model_check = None;
        if let Some(folder) = self.session.model_folder.clone() {
            self.loader.inspect_model(folder, self.session.lora.clone());
        }
    }

    /// The render's state (for tests and the panels).
    pub fn render_state(&self) -> &RenderState {
        &self.render
    }

    /// The settings the next render uses (what the settings panel edits).
    pub fn settings_mut(&mut self) -> &mut crate::settings::GenerationSettings {
        &mut self.session.settings
    }

    /// Whether the waveform is drawn by its WGSL shader (the window renders with wgpu).
    pub fn draws_waveform_with_shader(&self) -> bool {
        self.shader_waveform
    }

    /// The renders that are running or waiting, as a restart would offer them again.
    pub fn unfinished_jobs(&self) -> Vec<super::render_state::JobSpec> {
        self.render.unfinished()
    }

    /// Offers `jobs` for queueing again, as at a start after they were left waiting.
    pub fn offer_pending_jobs(&mut self, jobs: Vec<super::render_state::JobSpec>) {
        self.offered_jobs = jobs;
    }

    /// Sends the player's sound to `sound` instead (tests read it from a mixer).
    pub fn use_sound_output(&mut self, sound: super::sound::SoundOut) {
        self.sound = sound;
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether a background job is still running for either input.
    pub fn is_loading(&self) -> bool {
        matches!(self.portrait, Slot::Loading { .. }) || matches!(self.voice, Slot::Loading { .. })
    }

    pub fn portrait_error(&self) -> Option<&str> {
        match &self.portrait {
            Slot::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    pub fn voice_error(&self) -> Option<&str> {
        match &self.voice {
            Slot::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    pub(super) fn apply_theme(&self, ctx: &egui::Context) {
        ctx.set_theme(if self.session.dark_mode {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
    }

    pub(super) fn refresh_presets(&mut self) {
        let (list, problems) = self.presets.list();
        self.preset_list = list;
        self.preset_problems = problems.iter().map(ToString::to_string).collect();
    }

    pub(super) fn notify(&mut self, text: impl Into<String>, is_error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            is_error,
        });
    }

    /// Starts loading a file into the portrait or voice slot.
    pub fn open_input(&mut self, kind: InputKind, path: PathBuf) {
        match kind {
            InputKind::Portrait => {
                self.session.image = Some(path.clone());
                self.portrait_request = self
                    .loader
                    .load_portrait(path.clone(), self.session.settings.size.area());
                self.portrait = Slot::Loading { path };
            }
            InputKind::Voice => {
                self.session.audio = Some(path.clone());
                self.voice_request = self
                    .loader
                    .load_voice(path.clone(), self.session.settings.frames_per_clip);
                self.voice = Slot::Loading { path };
            }
        }
    }

    pub(super) fn pick_file(&self, kind: InputKind) {
        self.loader.pick_file(kind);
    }

    /// Files dropped anywhere on the window go to the slot their type fits.
    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        self.open_paths(dropped);
    }

    /// Opens each file in the slot its type fits, and says which files fit none.
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        for path in paths {
            match InputKind::of_path(&path) {
                Some(kind) => self.open_input(kind, path),
                None => self.notify(
                    format!(
                        "{}: not a portrait or voice file; drop a PNG, JPEG, WebP or BMP image, \
                         or WAV, MP3, FLAC, OGG or M4A audio",
                        path.display()
                    ),
                    true,
                ),
            }
        }
    }

    fn take_loaded(&mut self, ctx: &egui::Context) {
        for loaded in self.loader.poll() {
            match loaded {
                Loaded::Portrait {
                    request,
                    path,
                    decoded,
                    prepared,
                    area,
                } if request == self.portrait_request => {
                    let image = egui::ColorImage::from_rgb(
                        [prepared.width() as usize, prepared.height() as usize],
                        prepared.frame.as_raw(),
                    );
                    let texture = ctx.load_texture("portrait", image, egui::TextureOptions::LINEAR);
                    self.portrait = Slot::Ready(PortraitView {
                        path,
                        decoded,
                        prepared,
                        area,
                        texture,
                    });
                }
                Loaded::Voice {
                    request,
                    path,
                    voice,
                    peaks,
                } if request == self.voice_request => {
                    self.voice = Slot::Ready(VoiceView {
                        path,
                        voice,
                        peaks: std::sync::Arc::new(peaks),
                    });
                }
                Loaded::Failed {
                    request,
                    kind,
                    error,
                    ..
                } => {
                    let current = match kind {
                        InputKind::Portrait => self.portrait_request,
                        InputKind::Voice => self.voice_request,
                    };
                    if request == current {
                        match kind {
                            InputKind::Portrait => self.portrait = Slot::Failed { error },
                            InputKind::Voice => self.voice = Slot::Failed { error },
                        }
                    }
                }
                Loaded::Picked { kind, path } => self.open_input(kind, path),
                Loaded::PickedPath { target, path } => match target {
                    PickTarget::ModelFolder => {
                        self.session.model_folder = Some(path);
                        self.check_model();
                    }
                    PickTarget::LoraFile => {
                        self.session.lora = Some(path);
                        self.check_model();
                    }
                    PickTarget::OutputFolder => self.session.output_dir = path,
                },
                // Only the answer for the current choice counts.
                Loaded::Inspected {
                    folder,
                    lora,
                    outcome,
                } if self.session.model_folder.as_ref() == Some(&folder)
                    && self.session.lora == lora =>
                {
                    self.model_check = Some(outcome);
                }
                // A result for a request that a newer one replaced.
                _ => {}
            }
        }
    }

    /// Keeps the portrait framed for the current size choice.
    fn reframe_if_needed(&mut self) {
        let area = self.session.settings.size.area();
        if let Slot::Ready(view) = &self.portrait
            && view.area != area
        {
            let (path, decoded) = (view.path.clone(), Arc::clone(&view.decoded));
            self.portrait_request = self.loader.reframe_portrait(path.clone(), decoded, area);
            self.portrait = Slot::Loading { path };
        }
    }

    pub(super) fn file_name(path: &Path) -> String {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    }
}

impl eframe::App for StudioApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.take_dropped_files(ctx);
        self.take_loaded(ctx);
        self.reframe_if_needed();
        self.shortcuts(ctx);
        self.poll_render(ctx);
        self.poll_restored_jobs();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.top_bar(ui);
        egui::Panel::left("inputs")
            .resizable(true)
            .default_size(360.0)
            .size_range(280.0..=560.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.inputs_panel(ui));
            });
        egui::Panel::right("gpu")
            .resizable(false)
            .exact_size(260.0)
            .show(ui, |ui| self.memory_panel(ui));
        egui::Panel::bottom("render").show(ui, |ui| {
            // The controls first: on a short window the panel's end is what gets cut off.
            ui.add_space(4.0);
            self.render_controls(ui);
            self.render_summary(ui);
            self.model_row(ui);
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.show_preview, false, "Settings");
                ui.selectable_value(&mut self.show_preview, true, "Preview and renders");
            });
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| {
                if self.show_preview {
                    self.preview_panel(ui);
                } else {
                    self.settings_panel(ui);
                }
            });
        });
        self.drop_overlay(&ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        // What is running or waiting now, and an offer from the last start not yet answered.
        let mut pending = self.render.unfinished();
        pending.extend(self.offered_jobs.iter().cloned());
        self.session.pending_jobs = pending;
        eframe::set_value(storage, SESSION_KEY, &self.session);
    }
}
