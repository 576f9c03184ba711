//! The worker thread: owns the loaded models (kept between jobs that use the same ones), takes
//! jobs from the queue in order, runs each through the pipeline and turns the pipeline's hooks
//! into events, file writes and responses to commands.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;

use super::device::{ResolvedDevice, resolve};
use super::device_faults;
use super::events::{Command, DeviceInfo, Event, JobId, JobPlan, PeakMemory};
use super::job::Job;
use super::output::JobOutput;
use crate::media::soundtrack::{Soundtrack, samples_for_frames};
use crate::memory::monitor::{GpuMemory, MemoryReadings, read_once};
use crate::memory::{Hardware, plan_request};
use crate::model::KvPlacement;
use crate::pipeline::demo::DEMO_LABEL;
use crate::pipeline::frames::video_to_frames;
use crate::pipeline::models::RANDOM_LABEL;
use crate::pipeline::{
    DecodeMode, Flow, FrameChunk, ModelOrigin, ModelSpec, Models, PipelineError, RenderHooks,
    RenderRequest, SeededRandomness, Stage, render,
};
use crate::settings::Seed;

/// How often memory readings go out while a job runs.
const MEMORY_INTERVAL: Duration = Duration::from_millis(500);

/// Models kept loaded, one set per backend.
#[derive(Default)]
struct ModelCache {
    cpu: Option<(ModelSpec, Models<burn::backend::Flex>)>,
    #[cfg(feature = "cuda")]
    cuda: Option<((ModelSpec, u32), Models<CudaBackend>)>,
}

#[cfg(feature = "cuda")]
type CudaBackend = burn_cuda::Cuda<half::bf16, i32>;

/// The queue and the command channel: what the hooks need while the models are borrowed.
pub(super) struct Control {
    commands: Receiver<Command>,
    events: Sender<Event>,
    queue: VecDeque<Job>,
    next_id: JobId,
    paused: bool,
    shutdown: bool,
    nvml: Option<nvml_wrapper::Nvml>,
    nvml_missing_reported: bool,
    last_memory: Option<Instant>,
    /// The running job's VRAM budget, watched at every memory reading.
    budget: Option<VramBudget>,
    /// Why the running job must stop: it went past its budget.
    over_budget: Option<String>,
    /// The running GPU job's memory high-water mark, raised at every reading.
    peak: Option<PeakMemory>,
    /// A failure on the backend's device threads during the running job.
    device_fault: Option<String>,
    /// The running job's plan, for the messages that end it.
    plan_line: String,
}

/// A VRAM budget on one GPU, and what the plan predicted under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VramBudget {
    pub gpu: u32,
    pub bytes: u64,
    pub predicted: u64,
}

/// Why a job ends after a failure on the backend's device threads, with the plan it ran under.
fn device_fault_message(fault: &str, plan_line: &str) -> String {
    format!(
        "{}; it ran under {plan_line}; the models were unloaded and the next render starts \
         fresh (lower the size, use --fp8 or set --vram-budget to plan with more room)",
        device_faults::describe(fault)
    )
}

/// Raises `peak` to what its GPU holds now: this process's share when the driver reports it,
/// else the whole GPU's use.
pub fn raise_peak(peak: &mut PeakMemory, gpus: &[GpuMemory]) {
    let Some(gpu) = gpus.iter().find(|g| g.index == peak.gpu) else {
        return;
    };
    let (bytes, whole_gpu) = match gpu.this_process {
        Some(bytes) => (bytes, false),
        None => (gpu.used, true),
    };
    peak.whole_gpu |= whole_gpu;
    peak.bytes = peak.bytes.max(bytes);
}

/// The reason to stop when this process holds more of `budget.gpu` than the budget allows.
pub fn budget_exceeded(gpus: &[GpuMemory], budget: &VramBudget) -> Option<String> {
    let gpu = gpus.iter().find(|g| g.index == budget.gpu)?;
    let used = gpu.this_process?;
    (used > budget.bytes).then(|| {
        format!(
            "this render held {:.2} GB on cuda:{}, past its VRAM budget of {:.2} GB (the plan \
             predicted {:.2} GB); lower the settings or raise --vram-budget",
            used as f64 / 1e9,
            budget.gpu,
            budget.bytes as f64 / 1e9,
            budget.predicted as f64 / 1e9
        )
    })
}

impl Control {
    fn send(&self, event: Event) {
        // A front end that went away no longer listens; the work itself goes on or stops
        // through the command channel.
        let _ = self.events.send(event);
    }

    fn queued_ids(&self) -> Vec<JobId> {
        self.queue.iter().map(|j| j.id).collect()
    }

    /// Applies one command; returns whether it cancels the job `running`.
    fn apply(&mut self, command: Command, running: Option<JobId>) -> bool {
        match command {
            Command::Submit(mut job) => {
                self.next_id += 1;
                job.id = self.next_id;
                let id = job.id;
                self.queue.push_back(*job);
                self.send(Event::Queued {
                    job: id,
                    position: self.queue.len() - 1,
                });
                false
            }
            Command::Cancel(id) if Some(id) == running => true,
            Command::Cancel(id) => {
                let before = self.queue.len();
                self.queue.retain(|j| j.id != id);
                if self.queue.len() != before {
                    self.send(Event::Cancelled {
                        job: id,
                        output: None,
                        frames: 0,
                        clips: 0,
                    });
                    self.send(Event::QueueChanged {
                        queued: self.queued_ids(),
                    });
                }
                false
            }
            Command::CancelAll => {
                let dropped: Vec<JobId> = self.queued_ids();
                self.queue.clear();
                for job in dropped {
                    self.send(Event::Cancelled {
                        job,
                        output: None,
                        frames: 0,
                        clips: 0,
                    });
                }
                self.send(Event::QueueChanged { queued: Vec::new() });
                running.is_some()
            }
            Command::Pause => {
                if let Some(job) = running
                    && !self.paused
                {
                    self.paused = true;
                    self.send(Event::Paused { job });
                }
                false
            }
            Command::Resume => {
                if let Some(job) = running
                    && self.paused
                {
                    self.paused = false;
                    self.send(Event::Resumed { job });
                }
                self.paused = false;
                false
            }
            Command::Reorder(order) => {
                let mut rest: Vec<Job> = self.queue.drain(..).collect();
                for id in order {
                    if let Some(pos) = rest.iter().position(|j| j.id == id) {
                        self.queue.push_back(rest.remove(pos));
                    }
                }
                self.queue.extend(rest);
                self.send(Event::QueueChanged {
                    queued: self.queued_ids(),
                });
                false
            }
            Command::Shutdown => {
                self.shutdown = true;
                running.is_some()
            }
        }
    }

    /// A failure on the backend's device threads since the job started, once one happened.
    fn poll_device_fault(&mut self) -> Option<String> {
        if self.device_fault.is_none() {
            self.device_fault = device_faults::take();
        }
        self.device_fault.clone()
    }

    /// Between blocks: applies waiting commands, and holds while paused.
    fn checkpoint(&mut self, running: JobId) -> Flow {
        if self.poll_device_fault().is_some() {
            return Flow::Stop;
        }
        if self.budget.is_some() {
            self.report_memory(false);
        }
        if self.over_budget.is_some() {
            return Flow::Stop;
        }
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if self.apply(command, Some(running)) {
                            self.paused = false;
                            return Flow::Stop;
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        self.shutdown = true;
                        return Flow::Stop;
                    }
                }
            }
            if !self.paused {
                return Flow::Continue;
            }
            match self.commands.recv_timeout(MEMORY_INTERVAL) {
                Ok(command) => {
                    if self.apply(command, Some(running)) {
                        self.paused = false;
                        return Flow::Stop;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.report_memory(true),
                Err(RecvTimeoutError::Disconnected) => {
                    self.shutdown = true;
                    return Flow::Stop;
                }
            }
        }
    }

    /// Sends a memory reading, at most every [`MEMORY_INTERVAL`] unless `force`.
    fn report_memory(&mut self, force: bool) {
        if !force
            && self
                .last_memory
                .is_some_and(|t| t.elapsed() < MEMORY_INTERVAL)
        {
            return;
        }
        self.last_memory = Some(Instant::now());
        if self.nvml.is_none() && !self.nvml_missing_reported {
            match nvml_wrapper::Nvml::init() {
                Ok(nvml) => self.nvml = Some(nvml),
                Err(e) => {
                    self.nvml_missing_reported = true;
                    self.send(Event::Memory(MemoryReadings::NoNvidiaGpu(e.to_string())));
                }
            }
        }
        if let Some(nvml) = &self.nvml {
            match read_once(nvml) {
                Ok(gpus) => {
                    if let Some(peak) = &mut self.peak {
                        raise_peak(peak, &gpus);
                    }
                    if let Some(budget) = &self.budget
                        && self.over_budget.is_none()
                    {
                        self.over_budget = budget_exceeded(&gpus, budget);
                    }
                    self.send(Event::Memory(MemoryReadings::Gpus(gpus)));
                }
                Err(e) => self.send(Event::Memory(MemoryReadings::NoNvidiaGpu(e.to_string()))),
            }
        }
    }
}

pub(super) struct Worker {
    control: Control,
    models: ModelCache,
}

impl Worker {
    pub(super) fn new(commands: Receiver<Command>, events: Sender<Event>) -> Self {
        Self {
            control: Control {
                commands,
                events,
                queue: VecDeque::new(),
                next_id: 0,
                paused: false,
                shutdown: false,
                nvml: None,
                nvml_missing_reported: false,
                last_memory: None,
                budget: None,
                over_budget: None,
                peak: None,
                device_fault: None,
                plan_line: String::new(),
            },
            models: ModelCache::default(),
        }
    }

    /// Runs until shut down or until every front end has gone.
    pub(super) fn run(mut self) {
        while !self.control.shutdown {
            match self.control.queue.pop_front() {
                Some(job) => {
                    self.control.send(Event::QueueChanged {
                        queued: self.control.queued_ids(),
                    });
                    self.run_job(job);
                }
                None => match self.control.commands.recv() {
                    Ok(command) => {
                        self.control.apply(command, None);
                    }
                    Err(_) => break,
                },
            }
        }
    }

    /// Points cubecl's kernel and autotune caches at the user's cache folder before the first
    /// GPU operation, and says when this render will pay for compiling them.
    #[cfg(feature = "cuda")]
    fn prepare_kernel_caches(&mut self, id: JobId) {
        let Some(dir) = crate::gpu::configure_user_kernel_caches() else {
            return;
        };
        if !dir.join("kernels").exists() {
            self.control.send(Event::Notice {
                job: id,
                message: format!(
                    "first GPU render on this machine: compiling and tuning kernels (minutes); \
                     they are kept in {} for the next renders",
                    dir.display()
                ),
            });
        }
    }

    fn run_job(&mut self, job: Job) {
        let id = job.id;
        let settings = &job.inputs.settings;
        let device = match resolve(&settings.devices) {
            Ok(device) => device,
            Err(e) => {
                self.control.send(failed(id, &e, None));
                return;
            }
        };
        let seed = match settings.seed {
            Seed::Fixed(seed) => seed,
            Seed::Random => random_seed(),
        };
        let mut request = RenderRequest::from_inputs(&job.inputs);
        let summary = job.inputs.summary();
        let memory = match job.model.configs() {
            Ok(configs) => crate::memory::plan(&plan_request(
                &configs,
                settings,
                (summary.width, summary.height),
                Some(summary.audio_seconds),
                &Hardware::ThisMachine {
                    gpu: match device {
                        ResolvedDevice::Cuda(index) => Some(index),
                        ResolvedDevice::Cpu => None,
                    },
                },
            )),
            Err(e) => {
                self.control.send(failed(id, &e, None));
                return;
            }
        };
        request.kv_placement = if memory.strategy.kv_on_host() {
            KvPlacement::Host
        } else {
            KvPlacement::Device
        };
        // Layer streaming parks the DiT's blocks at load (a different set of loaded models) and
        // runs four blocks per call so each copied layer serves four of them.
        let mut spec = job.model.clone();
        spec.stream_layers = memory.strategy.streams_layers();
        request.step_batched |= spec.stream_layers;
        request.release_encoders = memory.releases_encoders;
        let can_start = memory.can_start();
        let refusal = (!can_start).then(|| does_not_fit(&memory));
        let plan_line = memory.summary_line();
        let predicted = memory.render_device().predicted_peak_bytes;
        let plan = JobPlan {
            device: DeviceInfo {
                name: device.name(),
                precision: device.precision().into(),
            },
            model: job.model.origin.clone(),
            model_description: job.model.origin.describe(),
            inputs: job.inputs.summary(),
            decode: request.decode,
            seed,
            output: job.output.path().cloned(),
            memory,
        };
        self.control.send(Event::Planned {
            job: id,
            plan: Box::new(plan),
        });
        if let Some(error) = refusal {
            // Nothing was loaded: the plan said no before any model touched the device.
            self.control.send(failed(id, &error, None));
            return;
        }
        // A failure left over from an earlier job is not this one's.
        device_faults::watch();
        let _ = device_faults::take();
        self.control.device_fault = None;
        self.control.plan_line = plan_line.clone();
        let noise = match &job.model.origin {
            ModelOrigin::Demo { .. } => Some(format!(
                "rendering with the {DEMO_LABEL}: a tiny model with random weights, so the video \
                 is noise; point --model at the Wan2.2-S2V-14B folder for real output"
            )),
            ModelOrigin::Random { .. } => Some(format!(
                "rendering with {RANDOM_LABEL} at the released 14B sizes, drawn on the device: \
                 the memory and speed are a real render's, the video is noise"
            )),
            ModelOrigin::Checkpoint { .. } => None,
        };
        if let Some(message) = noise {
            self.control.send(Event::Notice { job: id, message });
        }
        // A panic inside a backend (burn-cuda reports out-of-memory that way) must not take the
        // engine down: the job fails with the plan it ran under, the models it may have left
        // half-updated are dropped, and the next job starts clean.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match device {
            ResolvedDevice::Cpu => run_cached(
                &mut self.control,
                &mut self.models.cpu,
                spec.clone(),
                &job,
                &request,
                seed,
                &Default::default(),
            ),
            #[cfg(feature = "cuda")]
            ResolvedDevice::Cuda(index) => {
                self.prepare_kernel_caches(id);
                self.control.over_budget = None;
                self.control.peak = Some(PeakMemory {
                    gpu: index,
                    bytes: 0,
                    predicted,
                    whole_gpu: false,
                });
                self.control.report_memory(true);
                self.control.budget = settings.vram_budget_gb.map(|gb| VramBudget {
                    gpu: index,
                    bytes: (gb * 1e9) as u64,
                    predicted,
                });
                run_cached(
                    &mut self.control,
                    &mut self.models.cuda,
                    (spec.clone(), index),
                    &job,
                    &request,
                    seed,
                    &burn_cuda::CudaDevice::new(index as usize),
                )
            }
            #[cfg(not(feature = "cuda"))]
            ResolvedDevice::Cuda(_) => {
                let _ = predicted;
                let e = PipelineError::Device("this build has no CUDA support".into());
                self.control.send(failed(id, &e, None));
            }
        }));
        self.control.budget = None;
        self.control.over_budget = None;
        self.control.peak = None;
        if self.control.device_fault.take().is_some() {
            // The backend's state after a failed task is unknown: the next job loads afresh.
            self.models = ModelCache::default();
        }
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            self.models = ModelCache::default();
            self.control.send(Event::Failed {
                job: id,
                error: format!(
                    "the render failed inside the compute backend ({message}); it ran under \
                     {plan_line}; the models were unloaded and the next render starts fresh"
                ),
                bad_input: false,
                output: None,
            });
        }
    }
}

/// Runs `job` with the models kept in `slot` under `key`, loading them first when the slot holds
/// other ones; leaves them in the slot for the next job.
fn run_cached<B: Backend, K: PartialEq + AsRef<ModelSpec>>(
    control: &mut Control,
    slot: &mut Option<(K, Models<B>)>,
    key: K,
    job: &Job,
    request: &RenderRequest,
    seed: u64,
    device: &B::Device,
) {
    let models = match take_cached(slot, &key) {
        Some(models) => models,
        None => match load_models(control, job.id, key.as_ref(), device) {
            Some(models) => models,
            None => return,
        },
    };
    if !models.encoders_loaded() {
        // An earlier render released them to make room.
        control.send(progress(job.id, Stage::LoadingModels, 0, 1));
        if let Err(e) = models.reload_encoders(key.as_ref(), device) {
            control.send(failed(job.id, &e, None));
            *slot = Some((key, models));
            return;
        }
        control.send(progress(job.id, Stage::LoadingModels, 1, 1));
    }
    run_loaded(control, &models, job, request, seed, device);
    *slot = Some((key, models));
}

/// Loads a job's models, reporting progress; sends `Failed` and returns `None` on error.
fn load_models<B: Backend>(
    control: &mut Control,
    id: JobId,
    spec: &ModelSpec,
    device: &B::Device,
) -> Option<Models<B>> {
    control.send(progress(id, Stage::LoadingModels, 0, 1));
    match Models::<B>::load(spec, device) {
        Ok(models) => {
            control.send(progress(id, Stage::LoadingModels, 1, 1));
            Some(models)
        }
        Err(e) => {
            control.send(failed(id, &e, None));
            None
        }
    }
}

fn take_cached<B: Backend, K: PartialEq>(
    slot: &mut Option<(K, Models<B>)>,
    key: &K,
) -> Option<Models<B>> {
    match slot.take() {
        Some((cached, models)) if &cached == key => Some(models),
        // Different models: drop the old ones before loading, so both never sit in memory.
        _ => None,
    }
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    crate::rng::SplitMix64::new(nanos ^ u64::from(std::process::id())).next_u64() >> 1
}

fn progress(job: JobId, stage: Stage, done: u64, total: u64) -> Event {
    Event::Progress {
        job,
        stage,
        done,
        total,
        eta_seconds: None,
        frames_per_second: None,
    }
}

/// The error of a render the planner refused: its verdict and the settings that would fit.
fn does_not_fit(plan: &crate::memory::MemoryPlan) -> PipelineError {
    let mut message = format!("the render does not fit: {}", plan.verdict);
    let available: Vec<_> = plan.suggestions.iter().filter(|s| s.available).collect();
    if available.is_empty() {
        message.push_str("; `avatar-studio plan` shows the memory needed by each component");
    } else {
        let changes: Vec<_> = available.iter().map(|s| s.change.as_str()).collect();
        message.push_str(&format!("; try {}", changes.join(", or ")));
    }
    PipelineError::DoesNotFit(message)
}

fn failed(job: JobId, error: &PipelineError, output: Option<std::path::PathBuf>) -> Event {
    Event::Failed {
        job,
        error: error.to_string(),
        bad_input: error.is_bad_input(),
        output,
    }
}

/// Runs one job on loaded models and sends its final event.
fn run_loaded<B: Backend>(
    control: &mut Control,
    models: &Models<B>,
    job: &Job,
    request: &RenderRequest,
    seed: u64,
    device: &B::Device,
) {
    let settings = &job.inputs.settings;
    let soundtrack = match Soundtrack::from_voice(&job.inputs.voice.original, settings.audio_sync) {
        Ok(s) => s,
        Err(e) => {
            control.send(failed(job.id, &PipelineError::Media(e), None));
            return;
        }
    };
    let clips = job.inputs.clips();
    let frame_limit = job
        .inputs
        .voice
        .timeline
        .frames_in_file(clips, settings.audio_sync);
    let title = models
        .origin
        .noise_label()
        .map(|label| format!("Avatar Studio ({label})"));
    let output = JobOutput::new(
        job.output.clone(),
        job.inputs.portrait.width(),
        job.inputs.portrait.height(),
        frame_limit,
        settings.video_crf,
        title,
        soundtrack.clone(),
    );
    let mut hooks = EngineHooks {
        control,
        job: job.id,
        output: Some(output),
        soundtrack,
        clips_complete: 0,
        frames_out: 0,
        render_started: None,
        streaming: request.decode == DecodeMode::Streaming,
    };
    let result = render(
        models,
        request,
        &mut SeededRandomness { seed },
        &mut hooks,
        device,
    );
    let output = hooks.output.take();
    let clips_complete = hooks.clips_complete;
    let render_started = hooks.render_started;
    let frames = output
        .as_ref()
        .map_or(hooks.frames_out, |o| o.frames_written());
    let id = job.id;
    match result {
        Ok(outcome) => {
            let path = match output.map(JobOutput::finish).transpose() {
                Ok(path) => path.flatten(),
                Err(e) => {
                    control.send(failed(id, &PipelineError::Media(e), None));
                    return;
                }
            };
            if let Some(fault) = control.device_fault.clone().filter(|_| outcome.stopped) {
                control.send(Event::Failed {
                    job: id,
                    error: device_fault_message(&fault, &control.plan_line),
                    bad_input: false,
                    output: path,
                });
            } else if let Some(reason) = control.over_budget.take().filter(|_| outcome.stopped) {
                control.send(Event::Failed {
                    job: id,
                    error: format!("stopped: {reason}"),
                    bad_input: true,
                    output: path,
                });
            } else if outcome.stopped {
                control.send(Event::Cancelled {
                    job: id,
                    output: path,
                    frames,
                    clips: clips_complete,
                });
            } else {
                control.report_memory(true);
                control.send(Event::Finished {
                    job: id,
                    output: path,
                    frames,
                    clips: clips_complete,
                    seconds: outcome.seconds,
                    frames_per_second: render_started
                        .map(|start| frames as f64 / start.elapsed().as_secs_f64().max(1e-9)),
                    peak_memory: control.peak.filter(|p| p.bytes > 0),
                });
            }
        }
        Err(e) => {
            // Completed clips stay: the file is finished so that it plays. A render that
            // completed none leaves nothing behind.
            let path = match output {
                Some(output) if clips_complete > 0 => output.finish().ok().flatten(),
                Some(output) => {
                    output.discard();
                    None
                }
                None => None,
            };
            control.send(failed(id, &e, path));
        }
    }
}

/// The pipeline's hooks for one job.
struct EngineHooks<'a> {
    control: &'a mut Control,
    job: JobId,
    output: Option<JobOutput>,
    soundtrack: Soundtrack,
    clips_complete: usize,
    frames_out: u64,
    render_started: Option<Instant>,
    streaming: bool,
}

impl<B: Backend> RenderHooks<B> for EngineHooks<'_> {
    fn checkpoint(&mut self) -> Flow {
        self.control.checkpoint(self.job)
    }

    fn progress(&mut self, stage: Stage, done: u64, total: u64) {
        if stage == Stage::Prefill && self.render_started.is_none() {
            self.render_started = Some(Instant::now());
        }
        let (eta_seconds, frames_per_second) = match (stage, self.render_started) {
            (Stage::Rendering, Some(start)) if done > 0 => {
                let elapsed = start.elapsed().as_secs_f64();
                let eta = elapsed / done as f64 * total.saturating_sub(done) as f64;
                let fps = (self.frames_out as f64 / elapsed.max(1e-9)).max(0.0);
                (Some(eta), (self.frames_out > 0).then_some(fps))
            }
            _ => (None, None),
        };
        self.control.send(Event::Progress {
            job: self.job,
            stage,
            done,
            total,
            eta_seconds,
            frames_per_second,
        });
        // Every stage boundary is read (the end of one is its high-water mark: the allocator
        // keeps what it used); blocks at most every MEMORY_INTERVAL.
        self.control
            .report_memory(stage != Stage::Rendering && done == total);
    }

    fn frames(&mut self, chunk: FrameChunk<B>) -> Result<(), PipelineError> {
        let frames = video_to_frames(chunk.video);
        // Reading the frames waited for every task that made them: a failure among those has
        // been noted by now, and these frames are not written.
        if let Some(fault) = self.control.poll_device_fault() {
            return Err(PipelineError::DeviceFault(device_fault_message(
                &fault,
                &self.control.plan_line,
            )));
        }
        if let Some(output) = self.output.as_mut() {
            output.write(&frames)?;
        }
        let first = chunk.first_frame;
        let last = first + frames.len() as u64;
        let audio = self
            .soundtrack
            .span(samples_for_frames(first), samples_for_frames(last));
        self.frames_out = last;
        if chunk.ends_clip {
            self.clips_complete = chunk.clip + 1;
        }
        self.control.send(Event::ClipReady {
            job: self.job,
            clip: chunk.clip,
            block: if self.streaming { chunk.block } else { None },
            first_frame: first,
            frames: Arc::new(frames),
            audio: Arc::new(audio),
            clip_complete: chunk.ends_clip,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, this_process: Option<u64>) -> GpuMemory {
        GpuMemory {
            index,
            name: "test".into(),
            total: 80_000_000_000,
            used: 30_000_000_000,
            free: 50_000_000_000,
            this_process,
        }
    }

    #[test]
    fn the_budget_is_watched_on_the_render_gpu_only() {
        let budget = VramBudget {
            gpu: 1,
            bytes: 24_000_000_000,
            predicted: 21_000_000_000,
        };
        let under = [gpu(0, Some(70_000_000_000)), gpu(1, Some(23_000_000_000))];
        assert_eq!(budget_exceeded(&under, &budget), None);
        let over = [gpu(0, None), gpu(1, Some(25_500_000_000))];
        let reason = budget_exceeded(&over, &budget).expect("over budget");
        assert!(reason.contains("25.50 GB on cuda:1"), "{reason}");
        assert!(reason.contains("24.00 GB"), "{reason}");
        assert!(reason.contains("predicted 21.00 GB"), "{reason}");
        // No per-process reading (some drivers, containers): nothing to act on.
        assert_eq!(budget_exceeded(&[gpu(1, None)], &budget), None);
    }
}
