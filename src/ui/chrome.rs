//! The parts around the panels: the top bar (title, theme switch, the latest notice), the
//! overlay shown while files are dragged over the window, and the render summary at the bottom.

use egui::{Color32, RichText, Ui};

use crate::settings::FPS;

use super::app::StudioApp;
use super::inputs_panel::format_duration;

impl StudioApp {
    pub(super) fn top_bar(&mut self, ui: &mut Ui) {
        egui::Panel::top("top").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(RichText::new("Avatar Studio").strong());
                ui.label(RichText::new("portrait + voice = talking video").weak());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let label = if self.session.dark_mode {
                        "Light theme"
                    } else {
                        "Dark theme"
                    };
                    if ui.button(label).clicked() {
                        self.session.dark_mode = !self.session.dark_mode;
                        self.apply_theme(ui.ctx());
                    }
                });
            });
            if let Some(notice) = &self.notice {
                let text = notice.text.clone();
                let color = if notice.is_error {
                    Color32::from_rgb(230, 90, 80)
                } else {
                    Color32::from_rgb(90, 180, 110)
                };
                ui.horizontal(|ui| {
                    ui.label(RichText::new(text).color(color));
                    if ui.small_button("Dismiss").clicked() {
                        self.notice = None;
                    }
                });
            }
        });
    }

    pub(super) fn drop_overlay(&self, ctx: &egui::Context) {
        if ctx.input(|i| i.raw.hovered_files.is_empty()) {
            return;
        }
        let screen = ctx.content_rect();
        let painter = ctx.layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop_overlay"),
        ));
        painter.rect_filled(screen, 0.0, Color32::from_black_alpha(170));
        painter.text(
            screen.center(),
            egui::Align2::CENTER_CENTER,
            "Drop a portrait or a voice recording",
            egui::FontId::proportional(28.0),
            Color32::WHITE,
        );
    }

    pub(super) fn render_summary(&self, ui: &mut Ui) {
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            ui.heading("Render");
            let settings = &self.session.settings;
            let (Some(portrait), Some(voice)) = (self.portrait.ready(), self.voice.ready()) else {
                ui.label(
                    RichText::new("Add a portrait and a voice to see what the render will make.")
                        .weak(),
                );
                return;
            };
            if settings.validate().is_err() {
                ui.label(RichText::new("Fix the settings marked above.").weak());
                return;
            }
            let timeline = voice.timeline(settings.frames_per_clip);
            let clips = timeline.clips_to_render(settings.num_clips);
            let frames = timeline.frames_in_file(clips, settings.audio_sync);
            ui.label(format!(
                "{clips} clip{} make a {} video of {frames} frames, {}×{} at {FPS} fps",
                if clips == 1 { "" } else { "s" },
                format_duration(frames as f64 / f64::from(FPS)),
                portrait.prepared.width(),
                portrait.prepared.height(),
            ))
            .on_hover_text(format!(
                "The model makes {} frames; the video ends with the voice, as the reference's \
                 mux does.",
                timeline.output_frames(clips)
            ));
        });
    }
}
