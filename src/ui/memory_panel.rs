//! The GPU panel: a live memory gauge per NVIDIA GPU (used of total, with this app's share), or
//! a calm note that no NVIDIA GPU was found and renders will use the CPU; and under it the
//! memory plan of the current settings (predicted peak against what is usable, the placement,
//! the expected speed), redone as the sliders move, with a plain warning when it would not fit.

use egui::{RichText, Ui};

use crate::memory::monitor::MemoryReadings;
use crate::memory::plan::gb;
use crate::memory::{GpuCapacity, Hardware, MemoryPlan, ModelConfigs, plan, plan_request};
use crate::pipeline::ModelSpec;

use super::app::StudioApp;

const GB: f64 = 1e9;
/// How long a host RAM reading serves the plan.
const HOST_RAM_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

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
        self.plan_view(ui);
    }

    /// The plan for the current settings, inputs and GPUs; recomputed only when one changes.
    pub(super) fn current_plan(&self) -> MemoryPlan {
        let settings = &self.session.settings;
        let (frame, audio_seconds) = match (&self.portrait, &self.voice) {
            (super::app::Slot::Ready(p), voice) => {
                let (h, w) = crate::media::geometry::output_size(
                    p.decoded.height(),
                    p.decoded.width(),
                    settings.size.area(),
                );
                let seconds = match voice {
                    super::app::Slot::Ready(v) => Some(v.voice.samples_16k.len() as f64 / 16_000.0),
                    _ => None,
                };
                ((w, h), seconds)
            }
            _ => ((settings.size.width, settings.size.height), None),
        };
        // Where the engine would run it (`engine::device::resolve`'s rule), judged from the
        // monitor's reading instead of asking NVML again every frame.
        let render_gpu = match &settings.devices {
            _ if !cfg!(feature = "cuda") => None,
            crate::settings::DeviceChoice::Cpu => None,
            crate::settings::DeviceChoice::Auto => Some(0),
            crate::settings::DeviceChoice::Cuda(ids) => Some(ids.first().copied().unwrap_or(0)),
        };
        let gpus: Vec<GpuCapacity> = match (render_gpu, self.memory.latest()) {
            (Some(index), MemoryReadings::Gpus(gpus)) if gpus.iter().any(|g| g.index == index) => {
                let mut list: Vec<GpuCapacity> = gpus.iter().map(GpuCapacity::from).collect();
                list.sort_by_key(|g| g.index != index);
                list
            }
            _ => Vec::new(),
        };
        let host_ram_bytes = self.host_ram_bytes();
        let demo = self.session.model_folder.is_none();
        // Free memory moves a little all the time; round it so the plan is not redone per frame.
        let key = format!(
            "{:?}|{frame:?}|{audio_seconds:?}|{demo}|{}|{}",
            settings,
            gpus.iter()
                .map(|g| format!("{}:{}", g.index, g.free_bytes / 100_000_000))
                .collect::<Vec<_>>()
                .join(","),
            host_ram_bytes / 1_000_000_000
        );
        if let Some((cached_key, plan)) = self.plan_cache.borrow().as_ref()
            && *cached_key == key
        {
            return plan.clone();
        }
        // A model folder is planned as the released model it must be (no file read here: the
        // UI thread does no I/O); the demo from its own configs.
        let configs = if demo {
            ModelSpec::demo()
                .configs()
                .unwrap_or_else(|_| ModelConfigs::released())
        } else {
            ModelConfigs::released()
        };
        let plan = plan(&plan_request(
            &configs,
            settings,
            frame,
            audio_seconds,
            &Hardware::Known {
                gpus,
                host_ram_bytes,
            },
        ));
        *self.plan_cache.borrow_mut() = Some((key, plan.clone()));
        plan
    }

    /// Available host RAM, read from `/proc/meminfo` at most every two seconds (this runs every
    /// frame), or the amount the options assume.
    fn host_ram_bytes(&self) -> u64 {
        if let Some(bytes) = self.assume_host_ram {
            return bytes;
        }
        match self.host_ram_reading.get() {
            Some((at, bytes)) if at.elapsed() < HOST_RAM_REFRESH => bytes,
            _ => {
                let bytes = crate::memory::machine::available_host_ram();
                self.host_ram_reading
                    .set(Some((std::time::Instant::now(), bytes)));
                bytes
            }
        }
    }

    fn plan_view(&self, ui: &mut Ui) {
        let plan = self.current_plan();
        let device = plan.render_device();
        ui.add_space(4.0);
        ui.label(
            RichText::new(format!("Plan for these settings ({})", plan.device_label)).strong(),
        )
        .on_hover_text(plan.to_text());
        let fraction = if device.usable_bytes == 0 {
            1.0
        } else {
            (device.predicted_peak_bytes as f64 / device.usable_bytes as f64) as f32
        };
        let what = if device.index.is_some() { "GPU" } else { "RAM" };
        ui.add(
            egui::ProgressBar::new(fraction.min(1.0))
                .fill(if plan.fits {
                    ui.visuals().selection.bg_fill
                } else {
                    ui.visuals().error_fg_color
                })
                .text(format!(
                    "predicted peak {:.1} of {:.1} GB {what}",
                    gb(device.predicted_peak_bytes),
                    gb(device.usable_bytes)
                )),
        )
        .on_hover_text(
            "The memory planner's estimate for the current settings and inputs; \
                        hover the title for every component",
        );
        ui.label(
            RichText::new(format!(
                "{} · about {:.1} output frames/s ({})",
                plan.placement_text(),
                plan.expected_fps,
                plan.speed_source
            ))
            .small()
            .weak(),
        );
        if !plan.can_start() {
            let advice = plan
                .suggestions
                .iter()
                .find(|s| s.available)
                .map(|s| format!(" Try {}.", s.change))
                .unwrap_or_default();
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("This render would not fit: {}.{advice}", plan.verdict),
            );
        }
    }
}
