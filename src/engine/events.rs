//! The engine's vocabulary: commands in, events out. Front ends (the CLI, the studio) only ever
//! see these; no tensor crosses this line.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::job::Job;
use crate::inputs::InputSummary;
use crate::media::frame::RgbFrame;
use crate::memory::monitor::MemoryReadings;
use crate::pipeline::{ModelOrigin, RenderShape, Stage};

/// A job's number, unique within one engine.
pub type JobId = u64;

/// What a front end can ask.
#[derive(Debug)]
pub enum Command {
    /// Adds a job at the end of the queue.
    Submit(Box<Job>),
    /// Stops the job (running: within one block, keeping what was made; queued: removed).
    Cancel(JobId),
    /// Stops the running job and empties the queue.
    CancelAll,
    /// Holds the running job at its next block boundary.
    Pause,
    Resume,
    /// Puts the queued jobs in this order (ids not queued are ignored; queued ids not listed
    /// keep their relative order after the listed ones).
    Reorder(Vec<JobId>),
    /// Ends the worker after the running job is cancelled.
    Shutdown,
}

/// Where the render runs, as resolved for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// `cpu` or `cuda:N`.
    pub name: String,
    /// The compute precision on that device.
    pub precision: String,
}

/// What the engine decided before starting a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPlan {
    pub device: DeviceInfo,
    pub model: ModelOrigin,
    pub model_description: String,
    pub inputs: InputSummary,
    pub decode: crate::pipeline::DecodeMode,
    pub seed: u64,
    pub output: Option<PathBuf>,
    /// The memory planner's answer for this job on this machine.
    #[serde(serialize_with = "memory_plan_json")]
    pub memory: crate::memory::MemoryPlan,
}

fn memory_plan_json<S: serde::Serializer>(
    plan: &crate::memory::MemoryPlan,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&plan.to_json(), serializer)
}

/// The high-water mark of a job's GPU memory: NVML readings taken at every stage boundary and
/// between blocks (the allocator keeps what a block used, so a reading after it sees it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PeakMemory {
    pub gpu: u32,
    pub bytes: u64,
    /// The plan's predicted peak for this GPU.
    pub predicted: u64,
    /// The driver did not say what this process holds (as in some containers): `bytes` is the
    /// whole GPU's use, other programs included.
    pub whole_gpu: bool,
}

impl PeakMemory {
    /// One line: "peak 15.83 GB on cuda:0 (plan: 19.60 GB)".
    pub fn describe(&self) -> String {
        format!(
            "peak {:.2} GB on cuda:{} ({}plan: {:.2} GB)",
            self.bytes as f64 / 1e9,
            self.gpu,
            if self.whole_gpu {
                "the whole GPU's use; "
            } else {
                ""
            },
            self.predicted as f64 / 1e9
        )
    }
}

/// Everything the engine reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job joined the queue (its position counts from 0 behind the running job).
    Queued {
        job: JobId,
        position: usize,
    },
    /// The queue changed order or lost jobs.
    QueueChanged {
        queued: Vec<JobId>,
    },
    /// A job starts: where it runs and what it will make. The first event of every job.
    Planned {
        job: JobId,
        plan: Box<JobPlan>,
    },
    /// The clip loop's size, once the inputs are encoded.
    Shaped {
        job: JobId,
        shape: RenderShape,
    },
    /// Progress of a stage; for [`Stage::Rendering`] with the time left and output speed.
    Progress {
        job: JobId,
        stage: Stage,
        done: u64,
        total: u64,
        eta_seconds: Option<f64>,
        frames_per_second: Option<f64>,
    },
    /// New frames of clip `clip` (one block in streaming decode, the whole clip otherwise),
    /// with the sound that plays under them (48 kHz mono).
    ClipReady {
        job: JobId,
        clip: usize,
        block: Option<usize>,
        first_frame: u64,
        frames: Arc<Vec<RgbFrame>>,
        audio: Arc<Vec<f32>>,
        clip_complete: bool,
    },
    /// GPU memory as NVML reports it.
    Memory(MemoryReadings),
    Paused {
        job: JobId,
    },
    Resumed {
        job: JobId,
    },
    /// A line worth showing the user (e.g. that the demo weights are random).
    Notice {
        job: JobId,
        message: String,
    },
    Finished {
        job: JobId,
        output: Option<PathBuf>,
        frames: u64,
        clips: usize,
        seconds: f64,
        /// Output frames per second from the first denoising step to the last frame (model
        /// loading and the encoders left out).
        frames_per_second: Option<f64>,
        /// The most GPU memory the job was seen holding, beside the plan's prediction.
        peak_memory: Option<PeakMemory>,
    },
    /// Stopped on request; `output` holds what was made (playable), if anything was.
    Cancelled {
        job: JobId,
        output: Option<PathBuf>,
        frames: u64,
        clips: usize,
    },
    Failed {
        job: JobId,
        error: String,
        /// The user can fix it (a file, a flag, the model folder).
        bad_input: bool,
        /// Completed clips stay on disk; `None` when nothing usable was made.
        output: Option<PathBuf>,
    },
}

impl Event {
    /// The event as one JSON object for `generate --json` (frames and samples are counted,
    /// not dumped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Queued { job, position } => {
                json!({"event": "queued", "job": job, "position": position})
            }
            Self::QueueChanged { queued } => json!({"event": "queue_changed", "queued": queued}),
            Self::Planned { job, plan } => json!({"event": "planned", "job": job, "plan": plan}),
            Self::Shaped { job, shape } => json!({"event": "shaped", "job": job, "shape": shape}),
            Self::Progress {
                job,
                stage,
                done,
                total,
                eta_seconds,
                frames_per_second,
            } => json!({
                "event": "progress", "job": job, "stage": stage, "done": done, "total": total,
                "eta_seconds": eta_seconds, "frames_per_second": frames_per_second,
            }),
            Self::ClipReady {
                job,
                clip,
                block,
                first_frame,
                frames,
                audio,
                clip_complete,
            } => json!({
                "event": "clip_ready", "job": job, "clip": clip, "block": block,
                "first_frame": first_frame, "frames": frames.len(), "audio_samples": audio.len(),
                "clip_complete": clip_complete,
            }),
            Self::Memory(readings) => json!({"event": "memory", "readings": readings}),
            Self::Paused { job } => json!({"event": "paused", "job": job}),
            Self::Resumed { job } => json!({"event": "resumed", "job": job}),
            Self::Notice { job, message } => {
                json!({"event": "notice", "job": job, "message": message})
            }
            Self::Finished {
                job,
                output,
                frames,
                clips,
                seconds,
                frames_per_second,
                peak_memory,
            } => json!({
                "event": "finished", "job": job, "output": output, "frames": frames,
                "clips": clips, "seconds": seconds, "frames_per_second": frames_per_second,
                "peak_memory": peak_memory,
            }),
            Self::Cancelled {
                job,
                output,
                frames,
                clips,
            } => json!({
                "event": "cancelled", "job": job, "output": output, "frames": frames,
                "clips": clips,
            }),
            Self::Failed {
                job,
                error,
                bad_input,
                output,
            } => json!({
                "event": "failed", "job": job, "error": error, "bad_input": bad_input,
                "output": output,
            }),
        }
    }

    /// The job this event belongs to, if any.
    pub fn job(&self) -> Option<JobId> {
        match self {
            Self::Queued { job, .. }
            | Self::Planned { job, .. }
            | Self::Shaped { job, .. }
            | Self::Progress { job, .. }
            | Self::ClipReady { job, .. }
            | Self::Paused { job }
            | Self::Resumed { job }
            | Self::Notice { job, .. }
            | Self::Finished { job, .. }
            | Self::Cancelled { job, .. }
            | Self::Failed { job, .. } => Some(*job),
            Self::QueueChanged { .. } | Self::Memory(_) => None,
        }
    }

    /// Whether this is the last event of its job.
    pub fn ends_job(&self) -> bool {
        matches!(
            self,
            Self::Finished { .. } | Self::Cancelled { .. } | Self::Failed { .. }
        )
    }
}
