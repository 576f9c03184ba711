//! The render side of the window: the model and output choices, Generate / Pause / Cancel,
//! progress with time left and speed, the preview player over the frames made so far, the
//! queue and the history of finished renders.

use std::path::{Path, PathBuf};

use egui::{Color32, RichText, Ui};

use crate::engine::{Job, OutputTarget};
use crate::inputs::RenderInputs;
use crate::media::output_path::{check_output_dir, check_output_file};
use crate::pipeline::{ModelOrigin, ModelSpec, Stage};
use crate::settings::FPS;

use super::app::StudioApp;
use super::inputs_panel::format_duration;
use super::loader::PickTarget;
use super::render_state::{Announcement, JobSpec};

/// Where a render of `spec` writes, named after the portrait and the time.
fn output_target(spec: &JobSpec) -> Result<OutputTarget, String> {
    let stem = spec.image.file_stem().map_or_else(
        || "render".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let stamp = crate::media::output_path::unix_seconds();
    let dir = &spec.output_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot create the output folder: {e}", dir.display()))?;
    if spec.export_png {
        let folder = dir.join(format!("{stem}-{stamp}"));
        check_output_dir(&folder).map_err(|e| e.to_string())?;
        Ok(OutputTarget::PngSequence(folder))
    } else {
        let file = dir.join(format!("{stem}-{stamp}.mp4"));
        check_output_file(&file).map_err(|e| e.to_string())?;
        Ok(OutputTarget::Mp4(file))
    }
}

/// The models `spec` renders with: its folder, or the demo weights.
fn model_spec(spec: &JobSpec) -> ModelSpec {
    match &spec.model_folder {
        Some(folder) => ModelSpec {
            origin: ModelOrigin::Checkpoint {
                folder: folder.clone(),
                lora: spec.lora.clone(),
            },
            encoders: None,
            fp8: spec.settings.fp8,
            stream_layers: false,
        },
        None => ModelSpec::demo(),
    }
}

/// Reads the files of `spec` and builds its job (blocking: off the UI thread).
fn job_from_spec(spec: &JobSpec) -> Result<Job, String> {
    let inputs = RenderInputs::load(&spec.image, &spec.audio, spec.settings.clone())
        .map_err(|e| e.to_string())?;
    Ok(Job::new(inputs, model_spec(spec), output_target(spec)?))
}

impl StudioApp {
    /// The job the current inputs and settings describe, or why there is none.
    fn build_job(&self) -> Result<(Job, String, JobSpec), String> {
        let portrait = self
            .portrait
            .ready()
            .ok_or("Add a portrait first (drop an image on the window).")?;
        let voice = self
            .voice
            .ready()
            .ok_or("Add a voice recording first (drop an audio file on the window).")?;
        let settings = self.session.settings.clone();
        settings.validate().map_err(|e| e.to_string())?;
        let mut voice_data = (*voice.voice).clone();
        voice_data.timeline = voice.timeline(settings.frames_per_clip);
        let clips = voice_data.timeline.clips_to_render(settings.num_clips);
        let label = format!(
            "{} + {}: {clips} clip{}",
            Self::file_name(&portrait.path),
            Self::file_name(&voice.path),
            if clips == 1 { "" } else { "s" }
        );
        let spec = JobSpec {
            label: label.clone(),
            image: portrait.path.clone(),
            audio: voice.path.clone(),
            settings: settings.clone(),
            model_folder: self.session.model_folder.clone(),
            lora: self.session.lora.clone(),
            output_dir: self.session.output_dir.clone(),
            export_png: self.session.export_png,
        };
        let output = output_target(&spec)?;
        let inputs = RenderInputs {
            image_path: portrait.path.clone(),
            audio_path: voice.path.clone(),
            portrait: portrait.prepared.clone(),
            voice: voice_data,
            settings,
        };
        Ok((Job::new(inputs, model_spec(&spec), output), label, spec))
    }

    /// Queues again the renders that were waiting when the studio last closed: their files are
    /// read on a thread of their own, and each joins the queue when it is ready.
    pub fn restore_pending_jobs(&mut self) {
        let specs = std::mem::take(&mut self.offered_jobs);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for spec in specs {
                let job = job_from_spec(&spec).map_err(|e| format!("{}: {e}", spec.label));
                if tx.send((job, spec)).is_err() {
                    return;
                }
            }
        });
        self.restoring = Some(rx);
    }

    /// Submits the restored jobs that are ready.
    pub(super) fn poll_restored_jobs(&mut self) {
        let Some(rx) = &self.restoring else {
            return;
        };
        let mut ready = Vec::new();
        let mut finished = false;
        loop {
            match rx.try_recv() {
                Ok(item) => ready.push(item),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    finished = true;
                    break;
                }
            }
        }
        if finished {
            self.restoring = None;
        }
        for (job, spec) in ready {
            match job {
                Ok(job) => {
                    let label = spec.label.clone();
                    if let Err(e) = self.render.submit(job, label, Some(spec)) {
                        self.notify(e, true);
                    }
                }
                Err(e) => self.notify(format!("Could not queue again: {e}"), true),
            }
        }
    }

    /// Queues the current inputs and settings (Ctrl+Enter).
    pub fn generate(&mut self) {
        match self.build_job() {
            Ok((job, label, spec)) => match self.render.submit(job, label, Some(spec)) {
                Ok(()) => self.show_preview = true,
                Err(e) => self.notify(e, true),
            },
            Err(e) => self.notify(e, true),
        }
    }

    /// Engine events → state, toasts and history.
    pub(super) fn poll_render(&mut self, ctx: &egui::Context) {
        let (announcements, history) = self.render.poll();
        for entry in history {
            self.session.history.insert(0, entry);
        }
        self.session.history.truncate(50);
        for a in announcements {
            match a {
                Announcement::Finished(path) => {
                    self.notify(format!("Done: {}", path.display()), false);
                }
                Announcement::Cancelled(Some(path)) => self.notify(
                    format!("Cancelled; what was made is in {}", path.display()),
                    false,
                ),
                Announcement::Cancelled(None) => self.notify("Cancelled.", false),
                Announcement::Failed(error) => self.notify(error, true),
            }
        }
        let dt = ctx.input(|i| f64::from(i.stable_dt).min(0.1));
        self.render.preview.advance(dt, f64::from(FPS));
        // At the last frame of a finished render there is nothing more to wait for.
        let busy = self.render.busy();
        let preview = &mut self.render.preview;
        if preview.playing && !busy && preview.position + 1.0 >= preview.end_index() as f64 {
            preview.playing = false;
        }
        self.sound.sync(&self.render.preview);
        if self.render.busy() || self.render.preview.playing {
            ctx.request_repaint_after(std::time::Duration::from_millis(40));
        }
    }

    /// Keyboard: Ctrl+Enter generate, Space play/pause, Esc cancel.
    pub(super) fn shortcuts(&mut self, ctx: &egui::Context) {
        let typing = ctx.egui_wants_keyboard_input();
        let (generate, space, escape) = ctx.input(|i| {
            (
                i.modifiers.command && i.key_pressed(egui::Key::Enter),
                i.key_pressed(egui::Key::Space),
                i.key_pressed(egui::Key::Escape),
            )
        });
        if generate {
            self.generate();
        }
        if space && !typing && !self.render.preview.is_empty() {
            self.render.preview.playing = !self.render.preview.playing;
        }
        if escape && self.render.active.is_some() {
            self.render.cancel_active();
        }
    }

    pub(super) fn model_row(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Model").strong());
            match &self.session.model_folder {
                Some(folder) => {
                    ui.label(folder.display().to_string());
                }
                None => {
                    ui.label(
                        RichText::new("demo weights (random: the video is noise)")
                            .color(Color32::from_rgb(220, 170, 60)),
                    )
                    .on_hover_text(
                        "A tiny model of the real architecture with random weights, so the \
                         whole path can be tried without the 50 GB download. For real videos, \
                         download Wan2.2-S2V-14B and the LiveAvatar LoRA (see the README) and \
                         choose the folder here.",
                    );
                }
            }
            if ui.button("Choose model folder…").clicked() {
                self.loader.pick_path(PickTarget::ModelFolder);
            }
            if self.session.model_folder.is_some() {
                let lora = self
                    .session
                    .lora
                    .as_deref()
                    .map_or("no LoRA".into(), Self::file_name);
                ui.label(format!("LoRA: {lora}"));
                if ui.button("Choose LoRA…").clicked() {
                    self.loader.pick_path(PickTarget::LoraFile);
                }
                if ui.button("Use demo weights").clicked() {
                    self.session.model_folder = None;
                    self.session.lora = None;
                    self.model_check = None;
                }
            }
        });
        match (&self.session.model_folder, &self.model_check) {
            (None, _) => {
                ui.add(
                    egui::Label::new(
                        RichText::new(
                            "No model chosen: renders use the built-in demo weights. For real \
                             videos, download Wan2.2-S2V-14B and the LiveAvatar LoRA (hover \
                             for where).",
                        )
                        .small()
                        .weak(),
                    )
                    .truncate(),
                )
                .on_hover_text(
                    "Wan2.2-S2V-14B: huggingface.co/Wan-AI/Wan2.2-S2V-14B (the whole folder). \
                     The LiveAvatar LoRA: huggingface.co/Quark-Vision/Live-Avatar \
                     (liveavatar.safetensors). Then choose the folder and the LoRA here; the \
                     folder is checked from its file headers at once.",
                );
            }
            (Some(_), None) => {
                ui.label(RichText::new("Checking the model folder…").small().weak());
            }
            (Some(_), Some(Ok(summary))) => {
                ui.label(
                    RichText::new(summary)
                        .small()
                        .color(Color32::from_rgb(90, 180, 110)),
                );
            }
            (Some(_), Some(Err(problem))) => {
                ui.add(
                    egui::Label::new(
                        RichText::new(problem)
                            .small()
                            .color(Color32::from_rgb(230, 90, 80)),
                    )
                    .truncate(),
                )
                .on_hover_text(problem.as_str());
            }
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Output").strong());
            ui.label(self.session.output_dir.display().to_string());
            if ui.button("Choose folder…").clicked() {
                self.loader.pick_path(PickTarget::OutputFolder);
            }
            ui.checkbox(
                &mut self.session.export_png,
                "PNG frames + WAV instead of MP4",
            );
        });
    }

    pub(super) fn render_controls(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let ready = self.portrait.ready().is_some() && self.voice.ready().is_some();
            let label = if self.render.busy() {
                "Add to queue"
            } else {
                "Generate"
            };
            if ui
                .add_enabled(ready, egui::Button::new(RichText::new(label).strong()))
                .on_hover_text("Ctrl+Enter")
                .clicked()
            {
                self.generate();
            }
            if let Some(active) = self.render.active.clone() {
                let pause = if active.paused { "Resume" } else { "Pause" };
                if ui.button(pause).clicked() {
                    self.render.toggle_pause();
                }
                if ui
                    .add_enabled(!active.cancelling, egui::Button::new("Cancel"))
                    .on_hover_text("Esc: stops after the current block and keeps what was made")
                    .clicked()
                {
                    self.render.cancel_active();
                }
                let fraction = if active.total == 0 {
                    0.0
                } else {
                    active.done as f32 / active.total as f32
                };
                let mut text = if active.stage == Stage::Rendering {
                    format!("block {} of {}", active.done, active.total)
                } else {
                    active.stage.label().to_string()
                };
                if let Some(fps) = active.frames_per_second {
                    text.push_str(&format!(", {fps:.1} frames/s"));
                }
                if let Some(eta) = active.eta_seconds {
                    text.push_str(&format!(", {} left", format_duration(eta)));
                }
                if active.paused {
                    text.push_str(" (paused)");
                }
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .text(text)
                        .desired_width(ui.available_width()),
                );
            }
        });
    }

    pub(super) fn preview_panel(&mut self, ui: &mut Ui) {
        ui.heading("Preview");
        if let Some(active) = &self.render.active {
            ui.label(
                RichText::new(format!("{} on {}", active.label, active.device))
                    .small()
                    .weak(),
            );
        }
        let preview = &mut self.render.preview;
        if preview.is_empty() {
            ui.label(
                RichText::new(
                    "Each clip plays here as soon as it is made, while the rest renders.",
                )
                .weak(),
            );
        } else if let Some(frame) = preview.current().cloned() {
            let image = egui::ColorImage::from_rgb(
                [frame.width as usize, frame.height as usize],
                &frame.rgb,
            );
            match &mut self.preview_texture {
                Some(texture) => texture.set(image, egui::TextureOptions::LINEAR),
                None => {
                    self.preview_texture = Some(ui.ctx().load_texture(
                        "preview",
                        image,
                        egui::TextureOptions::LINEAR,
                    ));
                }
            }
            if let Some(texture) = &self.preview_texture {
                // Fit inside the width and about half the height, keeping the frame's aspect,
                // so the player's controls, the queue and the history stay in view.
                let max_width = ui.available_width().min(720.0);
                let max_height = (ui.available_height() * 0.55).max(120.0);
                let scale = (max_width / frame.width.max(1) as f32)
                    .min(max_height / frame.height.max(1) as f32);
                let size = egui::vec2(frame.width as f32 * scale, frame.height as f32 * scale);
                ui.add(egui::Image::new(texture).fit_to_exact_size(size));
            }
            ui.horizontal(|ui| {
                let play = if preview.playing { "Pause" } else { "Play" };
                if ui.button(play).on_hover_text("Space").clicked() {
                    if !preview.playing && preview.position + 1.0 >= preview.end_index() as f64 {
                        preview.position = preview.first_index as f64;
                    }
                    preview.playing = !preview.playing;
                }
                let first = preview.first_index as f64;
                let last = preview.end_index().saturating_sub(1) as f64;
                let mut position = preview.position;
                let time = format!(
                    "{} / {}",
                    format_duration(position / f64::from(FPS)),
                    format_duration((last + 1.0) / f64::from(FPS))
                );
                let slider = egui::Slider::new(&mut position, first..=last.max(first))
                    .show_value(false)
                    .text(time);
                if ui.add(slider).changed() {
                    preview.position = position;
                }
            });
            if let Some(why) = self.sound.unavailable() {
                ui.label(
                    RichText::new(format!("Silent preview: {why}"))
                        .small()
                        .weak(),
                );
            }
        }
        ui.separator();
        self.queue_list(ui);
        ui.separator();
        self.history_list(ui);
    }

    fn queue_list(&mut self, ui: &mut Ui) {
        ui.label(RichText::new("Queue").strong());
        if !self.offered_jobs.is_empty() {
            let count = self.offered_jobs.len();
            ui.horizontal_wrapped(|ui| {
                ui.label(format!(
                    "{count} render{} waiting when Avatar Studio closed.",
                    if count == 1 { " was" } else { "s were" }
                ))
                .on_hover_text(
                    self.offered_jobs
                        .iter()
                        .map(|j| j.label.as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                if ui.button("Queue them again").clicked() {
                    self.restore_pending_jobs();
                }
                if ui.button("Discard").clicked() {
                    self.offered_jobs.clear();
                }
            });
        }
        if self.render.queue.is_empty() {
            ui.label(RichText::new("Nothing waiting.").weak());
            return;
        }
        let mut remove = None;
        let mut up = None;
        for (i, job) in self.render.queue.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(format!("{}. {}", i + 1, job.label));
                if i > 0 && ui.small_button("Move up").clicked() {
                    up = Some(i);
                }
                if ui.small_button("Remove").clicked() {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = up {
            self.render.move_up(i);
        }
        if let Some(i) = remove {
            self.render.remove_queued(i);
        }
    }

    fn history_list(&mut self, ui: &mut Ui) {
        ui.label(RichText::new("Finished renders").strong());
        if self.session.history.is_empty() {
            ui.label(RichText::new("None yet.").weak());
            return;
        }
        let mut open = None;
        let mut reveal = None;
        for entry in &self.session.history {
            let texture = entry.thumbnail.as_ref().map(|t| {
                self.history_textures
                    .entry((entry.output.clone(), entry.finished_at))
                    .or_insert_with(|| {
                        ui.ctx().load_texture(
                            format!("history {}", entry.output.display()),
                            egui::ColorImage::from_rgb(
                                [t.width as usize, t.height as usize],
                                &t.rgb,
                            ),
                            egui::TextureOptions::LINEAR,
                        )
                    })
                    .clone()
            });
            ui.horizontal(|ui| {
                if let Some(texture) = &texture {
                    let size = texture.size_vec2();
                    ui.add(egui::Image::new(texture).fit_to_exact_size(size));
                }
                let state = if entry.complete { "" } else { " (cancelled)" };
                ui.label(format!(
                    "{}{state}: {} frames, {}",
                    Self::file_name(&entry.output),
                    entry.frames,
                    format_duration(entry.frames as f64 / f64::from(FPS))
                ))
                .on_hover_text(entry.output.display().to_string());
                if ui.small_button("Open").clicked() {
                    open = Some(entry.output.clone());
                }
                if ui.small_button("Show in folder").clicked() {
                    reveal = entry.output.parent().map(Path::to_path_buf);
                }
            });
        }
        if let Some(path) = open.or(reveal)
            && let Err(e) = open_with_system(&path)
        {
            self.notify(e, true);
        }
    }
}

/// Opens a file or folder with the desktop's default application (never waits on it).
fn open_with_system(path: &PathBuf) -> Result<(), String> {
    if !path.exists() {
        return Err(format!("{}: no longer exists", path.display()));
    }
    std::process::Command::new("xdg-open")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}
