//! The inputs panel: the portrait (thumbnail of the frame exactly as the model will see it), the
//! voice (waveform, length, clips it covers) and the prompt, each with an open button and the
//! same error messages as the command line.

use egui::{Color32, RichText, Ui};

use super::app::{Slot, StudioApp};
use super::loader::InputKind;
use super::waveform;

impl StudioApp {
    pub(super) fn inputs_panel(&mut self, ui: &mut Ui) {
        ui.add_space(6.0);
        self.portrait_section(ui);
        ui.separator();
        self.voice_section(ui);
        ui.separator();
        ui.heading("Prompt");
        ui.add(
            egui::TextEdit::multiline(&mut self.session.settings.prompt)
                .hint_text("Describe the speaker and the scene, e.g. 'a woman in a bright studio, speaking warmly'")
                .desired_rows(4)
                .desired_width(f32::INFINITY),
        )
        .on_hover_text("Optional. The umT5 text encoder reads up to 512 tokens.");
    }

    fn input_header(&self, ui: &mut Ui, title: &str, kind: InputKind) {
        ui.horizontal(|ui| {
            ui.heading(title);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let label = match kind {
                    InputKind::Portrait => "Open image...",
                    InputKind::Voice => "Open audio...",
                };
                if ui.button(label).clicked() {
                    self.pick_file(kind);
                }
            });
        });
    }

    fn portrait_section(&mut self, ui: &mut Ui) {
        self.input_header(ui, "Portrait", InputKind::Portrait);
        match &self.portrait {
            Slot::Empty => drop_hint(ui, "Drop a portrait here (PNG, JPEG, WebP or BMP)"),
            Slot::Loading { path } => loading(ui, &Self::file_name(path)),
            Slot::Failed { error, .. } => error_text(ui, error),
            Slot::Ready(view) => {
                let width = ui.available_width();
                let aspect = view.prepared.height() as f32 / view.prepared.width() as f32;
                let height = (width * aspect).min(360.0);
                ui.add(
                    egui::Image::new(&view.texture)
                        .fit_to_exact_size(egui::vec2(height / aspect, height))
                        .corner_radius(4.0),
                );
                ui.label(RichText::new(Self::file_name(&view.path)).strong());
                ui.label(format!(
                    "{}×{}, framed as {}×{}",
                    view.prepared.source_width,
                    view.prepared.source_height,
                    view.prepared.width(),
                    view.prepared.height()
                ))
                .on_hover_text(
                    "The size setting is an area: the frame keeps your image's aspect, with both \
                     sides multiples of 64. Black bars fill what the image does not cover.",
                );
            }
        }
    }

    fn voice_section(&mut self, ui: &mut Ui) {
        self.input_header(ui, "Voice", InputKind::Voice);
        let frames_per_clip = self.session.settings.frames_per_clip;
        match &self.voice {
            Slot::Empty => drop_hint(
                ui,
                "Drop a voice recording here (WAV, MP3, FLAC, OGG or M4A)",
            ),
            Slot::Loading { path } => loading(ui, &Self::file_name(path)),
            Slot::Failed { error, .. } => error_text(ui, error),
            Slot::Ready(view) => {
                let timeline = view.timeline(frames_per_clip);
                let seconds = view.voice.original.duration_seconds();
                let clip_seconds = f64::from(frames_per_clip) / 25.0;
                let fraction = (clip_seconds / seconds) as f32;
                waveform::draw(ui, &view.peaks, 64.0, Some(fraction), self.shader_waveform);
                ui.label(RichText::new(Self::file_name(&view.path)).strong());
                ui.label(format!(
                    "{} · {} Hz · {} channel{} · covers {} clip{}",
                    format_duration(seconds),
                    view.voice.original.sample_rate,
                    view.voice.original.source_channels,
                    if view.voice.original.source_channels == 1 {
                        ""
                    } else {
                        "s"
                    },
                    timeline.clips_covered,
                    if timeline.clips_covered == 1 { "" } else { "s" },
                ))
                .on_hover_text(
                    "Each tick on the waveform is a clip boundary. The last clip is padded \
                     with silence to a whole clip.",
                );
            }
        }
    }
}

fn drop_hint(ui: &mut Ui, text: &str) {
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.0, ui.visuals().weak_text_color()))
        .show(ui, |ui| {
            // A fixed height: a justified layout would take the whole column and push the
            // voice and prompt out of sight.
            let size = egui::vec2(ui.available_width(), 72.0);
            ui.allocate_ui_with_layout(
                size,
                egui::Layout::centered_and_justified(egui::Direction::TopDown),
                |ui| {
                    ui.label(RichText::new(text).weak());
                },
            );
        });
}

fn loading(ui: &mut Ui, name: &str) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(format!("Reading {name}..."));
    });
}

fn error_text(ui: &mut Ui, error: &str) {
    ui.label(RichText::new(error).color(Color32::from_rgb(230, 90, 80)));
}

/// `m:ss.s` for a length in seconds.
pub(super) fn format_duration(seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor();
    format!("{}:{:04.1}", minutes as u64, seconds - minutes * 60.0)
}
