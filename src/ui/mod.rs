//! The studio: an egui window that is a thin client of the library. It prepares inputs and
//! settings and shows what a render will make; nothing here touches a tensor.

mod app;
mod chrome;
mod inputs_panel;
mod loader;
mod memory_panel;
mod render_panel;
mod render_state;
mod settings_panel;
pub mod sound;
mod waveform;
mod waveform_gpu;

pub use app::{Session, StudioApp, StudioOptions};
pub use loader::InputKind;
pub use render_state::{HistoryEntry, JobSpec, RenderState};
pub use waveform::peaks as waveform_peaks;

/// Why the window could not open.
#[derive(Debug, thiserror::Error)]
#[error("the studio window could not open ({wgpu}; the OpenGL fallback also failed: {glow})")]
pub struct StudioError {
    wgpu: String,
    glow: String,
}

fn native_options(renderer: eframe::Renderer) -> eframe::NativeOptions {
    eframe::NativeOptions {
        renderer,
        viewport: egui::ViewportBuilder::default()
            .with_title("Avatar Studio")
            .with_app_id("avatar-studio")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([860.0, 560.0])
            .with_drag_and_drop(true),
        ..Default::default()
    }
}

/// Opens the studio and runs it until the window closes. Tries wgpu (Vulkan/Metal/DX12) first
/// and falls back to OpenGL, so machines without a working Vulkan driver still get a window.
pub fn run_studio(options: StudioOptions) -> Result<(), StudioError> {
    let start = |renderer| {
        let options = options.clone();
        eframe::run_native(
            "Avatar Studio",
            native_options(renderer),
            Box::new(move |cc| Ok(Box::new(StudioApp::new(cc, options)))),
        )
    };
    let wgpu = match start(eframe::Renderer::Wgpu) {
        Ok(()) => return Ok(()),
        Err(e) => e.to_string(),
    };
    tracing::warn!("wgpu renderer failed ({wgpu}); trying OpenGL");
    start(eframe::Renderer::Glow).map_err(|e| StudioError {
        wgpu,
        glow: e.to_string(),
    })
}
