//! The GPU panel: a live memory gauge per NVIDIA GPU (used of total, with this app's share), or
//! a calm note that no NVIDIA GPU was found and renders will use the CPU.

use egui::{RichText, Ui};

use crate::memory::monitor::MemoryReadings;

use super::app::StudioApp;

const GB: f64 = 1e9;

impl StudioApp {
    pub(super) fn memory_panel(&self, ui: &mut Ui) {
        ui.add_space(6.0);
        ui.heading("GPU memory");
        match self.memory.latest() {
            MemoryReadings::Starting => {
                ui.label(RichText::new("Looking for NVIDIA GPUs...").weak());
            }
            MemoryReadings::NoNvidiaGpu(reason) => {
                ui.label("No NVIDIA GPU found.")
                    .on_hover_text(format!("The NVIDIA driver did not answer: {reason}"));
                ui.label(
                    RichText::new(
                        "Renders will run on the CPU, which works but is much slower. With an \
                         NVIDIA GPU and its driver installed, its memory shows here.",
                    )
                    .weak(),
                );
            }
            MemoryReadings::Gpus(gpus) => {
                for gpu in gpus {
                    ui.label(RichText::new(format!("cuda:{}  {}", gpu.index, gpu.name)).strong());
                    let text = format!(
                        "{:.1} of {:.1} GB used",
                        gpu.used as f64 / GB,
                        gpu.total as f64 / GB
                    );
                    ui.add(egui::ProgressBar::new(gpu.used_fraction()).text(text));
                    let own = match gpu.this_process {
                        Some(bytes) => format!("Avatar Studio: {:.1} GB", bytes as f64 / GB),
                        None => "Avatar Studio: not reported by the driver".into(),
                    };
                    ui.label(RichText::new(own).small().weak());
                    ui.add_space(6.0);
                }
            }
        }
    }
}
