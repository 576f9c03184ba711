//! The voice's waveform: min/max peaks per column, computed once off the UI thread, and drawn
//! as a filled envelope with the clip boundaries marked.

use std::sync::Arc;

use eframe::egui_wgpu;
use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, Vec2};

use super::waveform_gpu::WaveformCallback;

/// `[min, max]` of the samples in each column.
pub type WaveformPeaks = Vec<[f32; 2]>;

/// Splits `samples` into `buckets` equal columns and keeps each column's extremes.
pub fn peaks(samples: &[f32], buckets: usize) -> WaveformPeaks {
    if samples.is_empty() || buckets == 0 {
        return Vec::new();
    }
    let buckets = buckets.min(samples.len());
    (0..buckets)
        .map(|b| {
            let start = b * samples.len() / buckets;
            let end = ((b + 1) * samples.len() / buckets).max(start + 1);
            samples[start..end]
                .iter()
                .fold([f32::MAX, f32::MIN], |[lo, hi], &s| [lo.min(s), hi.max(s)])
        })
        .collect()
}

/// Draws the envelope over the available width, with a tick at each clip boundary
/// (`clip_fraction` = one clip's share of the recording's length).
/// With `shader`, the envelope is one quad drawn by `shaders/waveform.wgsl`.
pub fn draw(
    ui: &mut Ui,
    peaks: &Arc<WaveformPeaks>,
    height: f32,
    clip_fraction: Option<f32>,
    shader: bool,
) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), height), Sense::hover());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    if peaks.is_empty() {
        return;
    }
    let color = visuals.selection.bg_fill;
    if shader {
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            WaveformCallback {
                peaks: peaks.clone(),
                color,
                rect,
                margin: 2.0,
            },
        ));
    } else {
        envelope_lines(&painter, rect, peaks, color);
    }
    clip_ticks(&painter, rect, clip_fraction, visuals);
    painter.rect_stroke(
        Rect::from_min_size(rect.min, rect.size()),
        4.0,
        Stroke::new(1.0, Color32::from_gray(90).gamma_multiply(0.5)),
        egui::StrokeKind::Inside,
    );
}

/// The envelope as one line per pixel column (renderers without wgpu).
fn envelope_lines(painter: &egui::Painter, rect: Rect, peaks: &WaveformPeaks, color: Color32) {
    let mid = rect.center().y;
    let half = rect.height() / 2.0 - 2.0;
    let columns = rect.width().max(1.0) as usize;
    for x in 0..columns {
        let i = x * peaks.len() / columns;
        let [lo, hi] = peaks[i.min(peaks.len() - 1)];
        let px = rect.left() + x as f32 + 0.5;
        painter.line_segment(
            [
                Pos2::new(px, mid - hi.clamp(-1.0, 1.0) * half),
                Pos2::new(px, mid - lo.clamp(-1.0, 1.0) * half),
            ],
            Stroke::new(1.0, color),
        );
    }
}

fn clip_ticks(
    painter: &egui::Painter,
    rect: Rect,
    clip_fraction: Option<f32>,
    visuals: &egui::Visuals,
) {
    if let Some(fraction) = clip_fraction.filter(|f| *f > 0.0 && *f < 1.0) {
        let tick = Stroke::new(1.0, visuals.weak_text_color().gamma_multiply(0.6));
        let mut at = fraction;
        while at < 1.0 {
            let x = rect.left() + at * rect.width();
            painter.line_segment(
                [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
                tick,
            );
            at += fraction;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_extremes_of_each_column() {
        let samples = [0.1, -0.5, 0.3, 0.9, -0.2, 0.0];
        assert_eq!(peaks(&samples, 2), vec![[-0.5, 0.3], [-0.2, 0.9]]);
        assert_eq!(peaks(&samples, 100).len(), 6);
        assert!(peaks(&[], 10).is_empty());
    }
}
