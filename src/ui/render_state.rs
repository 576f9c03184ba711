//! The studio's side of rendering: the engine (started on the first Generate, so the window
//! opens without loading anything), the running job's progress, the queue, the preview frames
//! that have arrived, and the history of finished renders. Engine events are folded in here;
//! the panels only draw this state.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{Command, Engine, Event, Job, JobId};
use crate::media::frame::RgbFrame;
use crate::pipeline::Stage;

/// Preview frames are kept at most this wide (the file has the full frames).
const PREVIEW_WIDTH: u32 = 480;
/// The preview keeps the most recent frames up to about this many bytes; older ones are in the
/// file.
const PREVIEW_BUDGET_BYTES: usize = 512 * 1024 * 1024;

/// A finished render, kept across restarts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    pub output: PathBuf,
    pub frames: u64,
    pub seconds: f64,
    /// Unix time when it finished.
    pub finished_at: u64,
    /// Cancelled renders keep what they made.
    pub complete: bool,
    /// A small picture of the render (a frame from its middle), for the history list.
    #[serde(default)]
    pub thumbnail: Option<Thumbnail>,
}

/// A small RGB picture kept with the history (a few KB, so the session stays small).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Width of history thumbnails, in pixels.
const THUMBNAIL_WIDTH: u32 = 64;

impl Preview {
    /// A thumbnail of the frame in the middle of what the player holds.
    pub fn thumbnail(&self) -> Option<Thumbnail> {
        let frame = self.frames.get(self.frames.len() / 2)?;
        let small = downscale(frame, THUMBNAIL_WIDTH);
        Some(Thumbnail {
            width: small.width,
            height: small.height,
            rgb: small.rgb,
        })
    }
}

/// The running job as the user sees it.
#[derive(Debug, Clone)]
pub struct ActiveJob {
    pub id: JobId,
    pub label: String,
    pub stage: Stage,
    pub done: u64,
    pub total: u64,
    pub eta_seconds: Option<f64>,
    pub frames_per_second: Option<f64>,
    pub paused: bool,
    pub cancelling: bool,
    pub output: Option<PathBuf>,
    pub device: String,
}

/// A job waiting its turn.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    pub id: Option<JobId>,
    pub label: String,
    /// What to render, kept so a queue survives a restart.
    pub spec: Option<JobSpec>,
}

/// A render as the user asked for it: enough to queue it again after a restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobSpec {
    pub label: String,
    pub image: PathBuf,
    pub audio: PathBuf,
    pub settings: crate::settings::GenerationSettings,
    pub model_folder: Option<PathBuf>,
    pub lora: Option<PathBuf>,
    pub output_dir: PathBuf,
    pub export_png: bool,
}

/// Frames that have arrived, for the player.
#[derive(Default)]
pub struct Preview {
    /// Index (in the video) of `frames[0]`.
    pub first_index: u64,
    pub frames: VecDeque<Arc<RgbFrame>>,
    /// The whole sound track of the job (48 kHz mono), assembled from the events.
    pub audio: Vec<f32>,
    /// Playhead, in frames.
    pub position: f64,
    pub playing: bool,
    bytes: usize,
}

impl Preview {
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// One past the last frame that has arrived.
    pub fn end_index(&self) -> u64 {
        self.first_index + self.frames.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frame under the playhead.
    pub fn current(&self) -> Option<&Arc<RgbFrame>> {
        let index = (self.position.max(0.0) as u64).max(self.first_index);
        let offset = index.saturating_sub(self.first_index) as usize;
        self.frames.get(offset).or_else(|| self.frames.back())
    }

    fn push(&mut self, first_frame: u64, frames: &[RgbFrame], audio: &[f32]) {
        if self.frames.is_empty() {
            self.first_index = first_frame;
        }
        for frame in frames {
            let small = Arc::new(downscale(frame, PREVIEW_WIDTH));
            self.bytes += small.rgb.len();
            self.frames.push_back(small);
        }
        self.audio.extend_from_slice(audio);
        while self.bytes > PREVIEW_BUDGET_BYTES && self.frames.len() > 1 {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.rgb.len();
                self.first_index += 1;
            }
        }
        if self.position < self.first_index as f64 {
            self.position = self.first_index as f64;
        }
    }

    /// Advances the playhead by `seconds` of playback; stops at the newest frame.
    pub fn advance(&mut self, seconds: f64, fps: f64) {
        if !self.playing {
            return;
        }
        let last = self.end_index().saturating_sub(1) as f64;
        self.position = (self.position + seconds * fps).min(last);
    }
}

/// Nearest-neighbour shrink to at most `max_width` (keeps the aspect).
fn downscale(frame: &RgbFrame, max_width: u32) -> RgbFrame {
    if frame.width <= max_width || frame.width == 0 {
        return frame.clone();
    }
    let width = max_width;
    let height =
        ((u64::from(frame.height) * u64::from(width)) / u64::from(frame.width)).max(1) as u32;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        let sy = (u64::from(y) * u64::from(frame.height) / u64::from(height)) as usize;
        for x in 0..width {
            let sx = (u64::from(x) * u64::from(frame.width) / u64::from(width)) as usize;
            let i = 3 * (sy * frame.width as usize + sx);
            rgb.extend_from_slice(&frame.rgb[i..i + 3]);
        }
    }
    RgbFrame { width, height, rgb }
}

/// What finished since the last poll, for the window to announce.
#[derive(Debug, Clone, PartialEq)]
pub enum Announcement {
    Finished(PathBuf),
    Cancelled(Option<PathBuf>),
    Failed(String),
}

#[derive(Default)]
pub struct RenderState {
    engine: Option<Engine>,
    pub active: Option<ActiveJob>,
    pub queue: Vec<QueuedJob>,
    pub preview: Preview,
    /// The job whose frames the preview shows.
    preview_job: Option<JobId>,
    /// Labels by job id, from submission until the job starts.
    labels: std::collections::HashMap<JobId, String>,
    /// What each job renders, from submission until it ends.
    specs: std::collections::HashMap<JobId, JobSpec>,
    pub last_error: Option<String>,
}

impl RenderState {
    /// Whether a job is running or waiting.
    pub fn busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    fn engine(&mut self) -> Result<&Engine, String> {
        if self.engine.is_none() {
            self.engine =
                Some(Engine::start().map_err(|e| format!("cannot start the render thread: {e}"))?);
        }
        self.engine
            .as_ref()
            .ok_or_else(|| "the render thread is not running".to_string())
    }

    /// Queues a job; it starts when the jobs before it are done.
    pub fn submit(&mut self, job: Job, label: String, spec: Option<JobSpec>) -> Result<(), String> {
        let engine = self.engine()?;
        if !engine.submit(job) {
            return Err("the render thread has stopped; restart the studio".into());
        }
        self.queue.push(QueuedJob {
            id: None,
            label,
            spec,
        });
        Ok(())
    }

    /// The renders not finished yet, the running one first: what a restart should offer to
    /// queue again.
    pub fn unfinished(&self) -> Vec<JobSpec> {
        let running = self
            .active
            .as_ref()
            .filter(|a| !a.cancelling)
            .and_then(|a| self.specs.get(&a.id).cloned());
        running
            .into_iter()
            .chain(self.queue.iter().filter_map(|j| j.spec.clone()))
            .collect()
    }

    fn send(&self, command: Command) {
        if let Some(engine) = &self.engine {
            engine.send(command);
        }
    }

    pub fn cancel_active(&mut self) {
        if let Some(active) = self.active.as_mut() {
            active.cancelling = true;
            let id = active.id;
            self.send(Command::Cancel(id));
        }
    }

    pub fn toggle_pause(&mut self) {
        if let Some(active) = &self.active {
            self.send(if active.paused {
                Command::Resume
            } else {
                Command::Pause
            });
        }
    }

    /// Removes a queued job.
    pub fn remove_queued(&mut self, index: usize) {
        if let Some(job) = self.queue.get(index)
            && let Some(id) = job.id
        {
            self.send(Command::Cancel(id));
        }
    }

    /// Moves a queued job one place earlier.
    pub fn move_up(&mut self, index: usize) {
        if index == 0 || index >= self.queue.len() {
            return;
        }
        self.queue.swap(index - 1, index);
        let order: Vec<JobId> = self.queue.iter().filter_map(|j| j.id).collect();
        self.send(Command::Reorder(order));
    }

    /// Folds in every waiting engine event; returns what finished, and history entries.
    pub fn poll(&mut self) -> (Vec<Announcement>, Vec<HistoryEntry>) {
        let events = match &self.engine {
            Some(engine) => engine.drain_events(),
            None => return (Vec::new(), Vec::new()),
        };
        let mut announcements = Vec::new();
        let mut history = Vec::new();
        for event in events {
            self.apply(event, &mut announcements, &mut history);
        }
        (announcements, history)
    }

    fn apply(
        &mut self,
        event: Event,
        announcements: &mut Vec<Announcement>,
        history: &mut Vec<HistoryEntry>,
    ) {
        match event {
            Event::Queued { job, .. } => {
                if let Some(slot) = self.queue.iter_mut().find(|j| j.id.is_none()) {
                    slot.id = Some(job);
                    self.labels.insert(job, slot.label.clone());
                    if let Some(spec) = &slot.spec {
                        self.specs.insert(job, spec.clone());
                    }
                }
            }
            Event::QueueChanged { queued } => {
                self.queue
                    .retain(|j| j.id.is_none_or(|id| queued.contains(&id)));
            }
            Event::Planned { job, plan } => {
                self.queue.retain(|j| j.id != Some(job));
                let label = self
                    .labels
                    .remove(&job)
                    .unwrap_or_else(|| format!("job {job}"));
                self.active = Some(ActiveJob {
                    id: job,
                    label,
                    stage: Stage::LoadingModels,
                    done: 0,
                    total: 1,
                    eta_seconds: None,
                    frames_per_second: None,
                    paused: false,
                    cancelling: false,
                    output: plan.output.clone(),
                    device: format!("{} ({})", plan.device.name, plan.device.precision),
                });
                self.preview.clear();
                self.preview_job = Some(job);
            }
            Event::Progress {
                job,
                stage,
                done,
                total,
                eta_seconds,
                frames_per_second,
            } => {
                if let Some(active) = self.active.as_mut().filter(|a| a.id == job) {
                    active.stage = stage;
                    active.done = done;
                    active.total = total;
                    if stage == Stage::Rendering {
                        active.eta_seconds = eta_seconds;
                        active.frames_per_second = frames_per_second;
                    }
                }
            }
            Event::ClipReady {
                job,
                first_frame,
                frames,
                audio,
                ..
            } => {
                if self.preview_job == Some(job) {
                    let was_empty = self.preview.is_empty();
                    self.preview.push(first_frame, &frames, &audio);
                    if was_empty {
                        // Start playing as soon as there is something to see.
                        self.preview.playing = true;
                    }
                }
            }
            Event::Paused { job } | Event::Resumed { job } => {
                let paused = matches!(event, Event::Paused { .. });
                if let Some(active) = self.active.as_mut().filter(|a| a.id == job) {
                    active.paused = paused;
                }
            }
            Event::Finished {
                job,
                output,
                frames,
                seconds,
                ..
            } => {
                self.end_job(job);
                if let Some(path) = output {
                    history.push(self.history_entry(path.clone(), frames, seconds, true));
                    announcements.push(Announcement::Finished(path));
                }
            }
            Event::Cancelled {
                job,
                output,
                frames,
                ..
            } => {
                let was_active = self.active.as_ref().is_some_and(|a| a.id == job);
                self.end_job(job);
                self.queue.retain(|j| j.id != Some(job));
                self.labels.remove(&job);
                if was_active {
                    if let Some(path) = &output {
                        history.push(self.history_entry(path.clone(), frames, 0.0, false));
                    }
                    announcements.push(Announcement::Cancelled(output));
                }
            }
            Event::Failed { job, error, .. } => {
                self.end_job(job);
                self.queue.retain(|j| j.id != Some(job));
                self.labels.remove(&job);
                self.last_error = Some(error.clone());
                announcements.push(Announcement::Failed(error));
            }
            Event::Shaped { .. } | Event::Memory(_) | Event::Notice { .. } => {}
        }
    }

    /// The history entry of a render that ended, with a thumbnail of what the player holds.
    fn history_entry(
        &self,
        output: PathBuf,
        frames: u64,
        seconds: f64,
        complete: bool,
    ) -> HistoryEntry {
        HistoryEntry {
            output,
            frames,
            seconds,
            finished_at: crate::media::output_path::unix_seconds(),
            complete,
            thumbnail: self.preview.thumbnail(),
        }
    }

    fn end_job(&mut self, job: JobId) {
        self.specs.remove(&job);
        if self.active.as_ref().is_some_and(|a| a.id == job) {
            self.active = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32, value: u8) -> RgbFrame {
        RgbFrame {
            width,
            height,
            rgb: vec![value; (width * height * 3) as usize],
        }
    }

    #[test]
    fn preview_keeps_arriving_frames_and_plays_up_to_the_newest() {
        let mut p = Preview::default();
        p.push(0, &[frame(8, 4, 1), frame(8, 4, 2)], &[0.0; 10]);
        p.push(2, &[frame(8, 4, 3)], &[0.0; 5]);
        assert_eq!(p.end_index(), 3);
        assert_eq!(p.audio.len(), 15);
        p.playing = true;
        p.advance(10.0, 25.0);
        assert_eq!(p.position, 2.0);
        assert_eq!(p.current().map(|f| f.rgb[0]), Some(3));
    }

    #[test]
    fn downscale_keeps_the_aspect() {
        let small = downscale(&frame(960, 540, 7), 480);
        assert_eq!((small.width, small.height), (480, 270));
        assert_eq!(small.rgb.len(), 480 * 270 * 3);
    }
}
