//! The settings panel: presets (the built-in four and the user's own: save, rename, delete),
//! and a control for every setting with a tooltip saying what it costs in time and memory.
//! Invalid values are shown next to their field with the same message the CLI prints.

use egui::{Color32, RichText, Ui};

use crate::settings::{AudioSync, ClipCount, DeviceChoice, SIZE_CHOICES, Seed, SizeArea};

use super::app::StudioApp;

impl StudioApp {
    pub(super) fn settings_panel(&mut self, ui: &mut Ui) {
        ui.add_space(6.0);
        self.presets_row(ui);
        ui.separator();
        let before = self.session.settings.clone();
        egui::Grid::new("settings")
            .num_columns(2)
            .spacing([16.0, 10.0])
            .striped(false)
            .show(ui, |ui| self.settings_grid(ui));
        if self.session.settings != before {
            self.session.preset = None;
        }
        if let Err(errors) = self.session.settings.validate() {
            ui.add_space(6.0);
            for error in &errors.errors {
                ui.label(RichText::new(error.to_string()).color(Color32::from_rgb(230, 90, 80)));
            }
        }
    }

    fn presets_row(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            let heading = ui.heading("Preset");
            let current = self
                .session
                .preset
                .clone()
                .unwrap_or_else(|| "custom".into());
            let mut chosen = None;
            egui::ComboBox::from_id_salt("preset")
                .selected_text(current.as_str())
                .width(180.0)
                .show_ui(ui, |ui| {
                    for preset in &self.preset_list {
                        let label = if preset.built_in {
                            preset.name.clone()
                        } else {
                            format!("{} (yours)", preset.name)
                        };
                        let response = ui.selectable_label(current == preset.name, label);
                        let response = if preset.description.is_empty() {
                            response
                        } else {
                            response.on_hover_text(&preset.description)
                        };
                        if response.clicked() {
                            chosen = Some(preset.clone());
                        }
                    }
                })
                .response
                .labelled_by(heading.id);
            if let Some(preset) = chosen {
                self.session.settings = preset.settings;
                self.session.preset = Some(preset.name);
            }
            let label = ui.label("New name");
            ui.add(
                egui::TextEdit::singleline(&mut self.preset_name_input)
                    .hint_text("my preset")
                    .desired_width(120.0),
            )
            .labelled_by(label.id);
            let name = self.preset_name_input.trim().to_string();
            if ui
                .add_enabled(!name.is_empty(), egui::Button::new("Save as"))
                .on_hover_text("Save the current settings as your own preset")
                .clicked()
            {
                let result = self.presets.save(&name, &self.session.settings);
                self.finish_preset_action(
                    result,
                    format!("Saved preset '{name}'"),
                    Some(name.clone()),
                );
            }
            let user_preset = self
                .session
                .preset
                .clone()
                .filter(|p| self.preset_list.iter().any(|q| &q.name == p && !q.built_in));
            if let Some(selected) = user_preset {
                if ui
                    .add_enabled(!name.is_empty(), egui::Button::new("Rename"))
                    .on_hover_text(format!("Rename '{selected}' to the name in the box"))
                    .clicked()
                {
                    let result = self.presets.rename(&selected, &name);
                    self.finish_preset_action(
                        result,
                        format!("Renamed to '{name}'"),
                        Some(name.clone()),
                    );
                }
                if ui.button("Delete").clicked() {
                    let result = self.presets.delete(&selected);
                    self.finish_preset_action(result, format!("Deleted preset '{selected}'"), None);
                }
            }
        });
        for problem in &self.preset_problems {
            ui.label(
                RichText::new(problem)
                    .small()
                    .color(Color32::from_rgb(230, 160, 60)),
            );
        }
    }

    fn finish_preset_action(
        &mut self,
        result: Result<(), crate::settings::presets::PresetError>,
        success: String,
        selected: Option<String>,
    ) {
        match result {
            Ok(()) => {
                self.preset_name_input.clear();
                self.session.preset = selected;
                self.refresh_presets();
                self.notify(success, false);
            }
            Err(e) => self.notify(e.to_string(), true),
        }
    }

    fn settings_grid(&mut self, ui: &mut Ui) {
        let s = &mut self.session.settings;

        let label = ui.label("Size").on_hover_text(
            "Maximum frame area; the aspect follows the portrait. Time and activation memory \
             grow with the area: 704*384 costs about 2.7× the work of 384*256.",
        );
        egui::ComboBox::from_id_salt("size")
            .selected_text(s.size.to_string())
            .show_ui(ui, |ui| {
                for choice in SIZE_CHOICES {
                    if let Ok(size) = choice.parse::<SizeArea>() {
                        ui.selectable_value(&mut s.size, size, choice);
                    }
                }
            })
            .response
            .labelled_by(label.id);
        ui.end_row();

        let label = ui.label("Clips").on_hover_text(
            "How much video to make. Each clip is frames-per-clip / 25 seconds; time grows \
             linearly with clips, memory does not.",
        );
        ui.horizontal(|ui| {
            let mut auto = s.num_clips == ClipCount::Auto;
            if ui.checkbox(&mut auto, "whole voice").changed() {
                s.num_clips = if auto {
                    ClipCount::Auto
                } else {
                    ClipCount::AtMost(10)
                };
            }
            if let ClipCount::AtMost(n) = &mut s.num_clips {
                ui.add(
                    egui::DragValue::new(n)
                        .range(1..=100_000)
                        .suffix(" at most"),
                )
                .labelled_by(label.id);
            }
        });
        ui.end_row();

        let label = ui.label("Frames per clip").on_hover_text(
            "Output frames per clip, in blocks of 12. The model was tuned for 48; longer clips \
             enlarge the KV caches (memory) proportionally.",
        );
        ui.add(
            egui::Slider::new(&mut s.frames_per_clip, 12..=192)
                .step_by(12.0)
                .suffix(" frames"),
        )
        .labelled_by(label.id);
        ui.end_row();

        let label = ui.label("Sampling steps").on_hover_text(
            "Denoising steps per block. Time is proportional to steps, and each step keeps its \
             own KV cache. The LiveAvatar LoRA is distilled for 4.",
        );
        ui.add(egui::Slider::new(&mut s.sample_steps, 1..=4))
            .labelled_by(label.id);
        ui.end_row();

        let label = ui
            .label("Seed")
            .on_hover_text("A fixed seed makes the same inputs give the same video.");
        ui.horizontal(|ui| {
            let mut random = s.seed == Seed::Random;
            if ui.checkbox(&mut random, "random").changed() {
                s.seed = if random {
                    Seed::Random
                } else {
                    Seed::Fixed(42)
                };
            }
            if let Seed::Fixed(n) = &mut s.seed {
                ui.add(egui::DragValue::new(n)).labelled_by(label.id);
            }
        });
        ui.end_row();

        let label = ui.label("FP8 linears").on_hover_text(
            "Quantise the DiT's linear weights to FP8 (e4m3, per-tensor scales) as the \
             reference's fp8 path does. On NVIDIA GPUs with FP8 tensor cores (RTX 40xx, \
             H100 and later) they take half the memory and the DiT runs faster; on other \
             devices they keep the reference's FP8 numerics at bf16's memory and speed.",
        );
        ui.checkbox(&mut s.fp8, "").labelled_by(label.id);
        ui.end_row();

        let label = ui.label("Streaming decode").on_hover_text(
            "Decode each block as soon as it is denoised: the preview starts within seconds and \
             memory stays flat however long the video. Off = decode after the last clip, as \
             the reference does by default (keeps every clip's latents until the end).",
        );
        ui.checkbox(&mut s.online_decode, "").labelled_by(label.id);
        ui.end_row();

        let label = ui.label("Step-batched").on_hover_text(
            "Denoise four consecutive blocks together, each at its own step, in one DiT call \
             (the schedule of the reference's multi-GPU pipeline, on one GPU): the same frames, \
             larger matrix products on the GPU, and each weight read once per four block-steps. \
             Costs about 4× the DiT's activation memory, and the first frames arrive three \
             calls later.",
        );
        ui.checkbox(&mut s.step_batched, "").labelled_by(label.id);
        ui.end_row();

        let label = ui
            .label("Device")
            .on_hover_text("auto = the NVIDIA GPU when a driver answers, else the CPU.");
        egui::ComboBox::from_id_salt("device")
            .selected_text(s.devices.to_string())
            .show_ui(ui, |ui| {
                let mut choices = vec![DeviceChoice::Auto, DeviceChoice::Cpu];
                choices.extend((0..4).map(|i| DeviceChoice::Cuda(vec![i])));
                for choice in choices {
                    let text = choice.to_string();
                    ui.selectable_value(&mut s.devices, choice, text);
                }
            })
            .response
            .labelled_by(label.id);
        ui.end_row();

        let label = ui.label("VRAM budget").on_hover_text(
            "Never use more GPU memory than this; the planner picks a placement (fp8, layer \
             streaming) that fits, at some cost in speed.",
        );
        ui.horizontal(|ui| {
            let mut limited = s.vram_budget_gb.is_some();
            if ui.checkbox(&mut limited, "limit").changed() {
                s.vram_budget_gb = limited.then_some(24.0);
            }
            if let Some(gb) = &mut s.vram_budget_gb {
                ui.add(egui::Slider::new(gb, 4.0..=192.0).suffix(" GB"))
                    .labelled_by(label.id);
            }
        });
        ui.end_row();

        let label = ui.label("Video quality").on_hover_text(
            "H.264 CRF: lower is better and larger. 18 looks lossless; 23 is a typical web \
             default. No effect on render time.",
        );
        ui.add(egui::Slider::new(&mut s.video_crf, 0..=51).text("CRF"))
            .labelled_by(label.id);
        ui.end_row();

        ui.label("Audio sync").on_hover_text(
            "Reference: the sound starts at t = 0 as LiveAvatar muxes it (the picture runs 3 \
             frames, 120 ms, ahead). Aligned: each frame plays with the sound that drove it.",
        );
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.audio_sync, AudioSync::Reference, "reference");
            ui.radio_value(&mut s.audio_sync, AudioSync::Aligned, "aligned");
        });
        ui.end_row();
    }
}
