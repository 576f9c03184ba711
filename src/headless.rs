//! `avatar-studio generate`: the headless front end of the engine. It checks every input before
//! the engine loads anything, submits one job (or a batch from a TOML file, with the models
//! loaded once), and shows the events as a progress bar or, with `--json`, one JSON object per
//! line. Ctrl-C cancels the running job and keeps the clips already written; a second Ctrl-C
//! quits at once.

pub mod batch;
pub mod bench;
pub mod bench_model;
pub mod bench_placement;
pub mod bench_placement_report;
pub mod plan;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::GenerateArgs;
use crate::engine::{Command, Engine, Event, Job, OutputTarget};
use crate::inputs::RenderInputs;
use crate::media::output_path::{check_output_dir, check_output_file};
use crate::pipeline::models::check_folder;
use crate::pipeline::{ModelOrigin, ModelSpec, Stage};
use crate::settings::GenerationSettings;
use crate::weights::folder_report::EncoderConfigs;

/// Exit code for input the user must fix (a file, a flag, a setting).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of a render stopped by Ctrl-C (the shell convention for SIGINT).
pub const EXIT_CANCELLED: u8 = 130;

/// One render of a batch (or the single render of the flags).
#[derive(Debug, Clone)]
pub struct PlannedRender {
    pub image: PathBuf,
    pub audio: PathBuf,
    pub settings: GenerationSettings,
    pub output: OutputTarget,
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Runs the command.
pub fn generate(args: &GenerateArgs) -> ExitCode {
    let settings = match args.settings.resolve() {
        Ok(settings) => settings,
        Err(message) => return bad_input(message),
    };
    if let Err(message) = args.compat.check() {
        return bad_input(message);
    }
    let model = match model_spec(args, settings.fp8) {
        Ok(model) => model,
        Err(message) => return bad_input(message),
    };
    let renders = match &args.batch {
        Some(file) => match batch::read_batch(file, &settings) {
            Ok(renders) => renders,
            Err(message) => return bad_input(message),
        },
        None => match single_render(args, settings) {
            Ok(render) => vec![render],
            Err(message) => return bad_input(message),
        },
    };
    // Everything is checked before the engine loads a model.
    let mut jobs = Vec::with_capacity(renders.len());
    for render in renders {
        if let Err(e) = check_target(&render.output) {
            return bad_input(e);
        }
        let inputs = match RenderInputs::load(&render.image, &render.audio, render.settings) {
            Ok(inputs) => inputs,
            Err(e) => return bad_input(e),
        };
        jobs.push(Job::new(inputs, model.clone(), render.output));
    }
    run_jobs(jobs, args.json)
}

fn check_target(target: &OutputTarget) -> Result<(), crate::media::MediaError> {
    match target {
        OutputTarget::Mp4(path) => check_output_file(path),
        OutputTarget::PngSequence(dir) => check_output_dir(dir),
        OutputTarget::EventsOnly => Ok(()),
    }
}

/// The models `args` name; `fp8` is the resolved settings' (a preset may ask for it too).
fn model_spec(args: &GenerateArgs, fp8: bool) -> Result<ModelSpec, String> {
    if args.random_weights {
        return Ok(ModelSpec::random_released(fp8));
    }
    let Some(folder) = &args.model else {
        if args.lora.is_some() {
            return Err("--lora needs --model (the checkpoint folder it adapts)".into());
        }
        return Ok(ModelSpec::demo());
    };
    if args.demo {
        return Err("--demo and --model exclude each other".into());
    }
    let encoders = match &args.encoders {
        Some(path) => EncoderConfigs::from_file(path).map_err(|e| e.to_string())?,
        None => EncoderConfigs::default(),
    };
    check_folder(folder, args.lora.as_deref(), &encoders).map_err(|e| e.to_string())?;
    Ok(ModelSpec {
        origin: ModelOrigin::Checkpoint {
            folder: folder.clone(),
            lora: args.lora.clone(),
        },
        encoders: args.encoders.clone(),
        fp8,
        stream_layers: false,
    })
}

fn single_render(
    args: &GenerateArgs,
    settings: GenerationSettings,
) -> Result<PlannedRender, String> {
    let image = args
        .image
        .clone()
        .ok_or("--image is required (or --batch FILE)")?;
    let audio = args
        .audio
        .clone()
        .ok_or("--audio is required (or --batch FILE)")?;
    let output = match (&args.png_dir, &args.out) {
        (Some(dir), None) => OutputTarget::PngSequence(dir.clone()),
        (Some(_), Some(_)) => return Err("choose --out FILE.mp4 or --png-dir DIR, not both".into()),
        (None, Some(out)) => OutputTarget::Mp4(out.clone()),
        (None, None) => OutputTarget::Mp4(default_output_path(&settings)),
    };
    Ok(PlannedRender {
        image,
        audio,
        settings,
        output,
    })
}

/// The reference's default name: `output/<YYYYmmdd_HHMMSS>_<steps>step_<prompt[:50]>.mp4`.
/// Creates `output/` if needed, as the reference does.
pub fn default_output_path(settings: &GenerationSettings) -> PathBuf {
    if let Err(e) = std::fs::create_dir_all("output") {
        tracing::warn!("cannot create ./output: {e}");
    }
    let secs = crate::media::output_path::unix_seconds();
    let prompt: String = settings
        .prompt
        .chars()
        .take(50)
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = format!(
        "{}_{}step_{}.mp4",
        utc_stamp(secs),
        settings.sample_steps,
        prompt.trim_matches('_')
    );
    Path::new("output").join(name)
}

/// `YYYYmmdd_HHMMSS` in UTC (civil-from-days, Howard Hinnant's algorithm).
fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}_{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Submits the jobs and follows their events to the end.
fn run_jobs(jobs: Vec<Job>, json: bool) -> ExitCode {
    let engine = match Engine::start() {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: cannot start the render thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    let interrupted = install_ctrl_c(engine.commander());
    let total = jobs.len();
    for job in jobs {
        engine.submit(job);
    }
    let mut view = View::new(json, total);
    let mut ended = 0;
    let mut worst = ExitCode::SUCCESS;
    while ended < total {
        let Some(event) = engine.next_event(Duration::from_millis(200)) else {
            if !engine.is_running() {
                eprintln!("error: the render thread stopped unexpectedly");
                return ExitCode::FAILURE;
            }
            continue;
        };
        view.show(&event);
        match &event {
            Event::Failed { bad_input, .. } => {
                ended += 1;
                worst = if *bad_input {
                    ExitCode::from(EXIT_BAD_INPUT)
                } else {
                    ExitCode::FAILURE
                };
            }
            Event::Cancelled { .. } => {
                ended += 1;
                if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                    worst = ExitCode::from(EXIT_CANCELLED);
                }
            }
            Event::Finished { .. } => ended += 1,
            _ => {}
        }
    }
    view.done();
    worst
}

/// First Ctrl-C: cancel everything (the running job keeps its clips). Second: exit now.
fn install_ctrl_c(
    commands: std::sync::mpsc::Sender<Command>,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let commands = std::sync::Mutex::new(commands);
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_CANCELLED));
        }
        eprintln!("\ncancelling after the current block (Ctrl-C again to quit now)…");
        if let Ok(tx) = commands.lock() {
            let _ = tx.send(Command::CancelAll);
        }
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will not cancel cleanly: {e}");
    }
    flag
}

/// The terminal side: a progress bar and plain lines, or JSON lines.
struct View {
    json: bool,
    jobs: usize,
    bar: Option<ProgressBar>,
}

impl View {
    fn new(json: bool, jobs: usize) -> Self {
        Self {
            json,
            jobs,
            bar: None,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn show(&mut self, event: &Event) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", event.to_json());
            let _ = out.flush();
            return;
        }
        match event {
            Event::Planned { job, plan } => {
                let prefix = if self.jobs > 1 {
                    format!("job {job}/{}: ", self.jobs)
                } else {
                    String::new()
                };
                self.line(&format!(
                    "{prefix}{} on {} ({}), seed {}, model {}",
                    plan.inputs
                        .image
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    plan.device.name,
                    plan.device.precision,
                    plan.seed,
                    plan.model_description
                ));
                self.line(&format!("{}", plan.inputs));
                self.line(&plan.memory.summary_line());
            }
            Event::Notice { message, .. } => self.line(&format!("note: {message}")),
            Event::Progress {
                stage,
                done,
                total,
                eta_seconds,
                frames_per_second,
                ..
            } => {
                if *stage != Stage::Rendering {
                    if done < total {
                        self.line(&format!("{}…", stage.label()));
                    }
                    return;
                }
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(*total);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {pos}/{len} blocks {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix("rendering");
                    bar
                });
                bar.set_length(*total);
                bar.set_position(*done);
                let mut msg = String::new();
                if let Some(fps) = frames_per_second {
                    msg.push_str(&format!("{fps:.1} frames/s"));
                }
                if let Some(eta) = eta_seconds {
                    msg.push_str(&format!(", {} left", human_seconds(*eta)));
                }
                bar.set_message(msg);
            }
            Event::ClipReady {
                clip,
                clip_complete: true,
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_prefix(format!("clip {} done", clip + 1));
                }
            }
            Event::Paused { .. } => self.line("paused"),
            Event::Resumed { .. } => self.line("resumed"),
            Event::Finished {
                output,
                frames,
                clips,
                seconds,
                frames_per_second,
                peak_memory,
                ..
            } => {
                self.finish_bar();
                let place = output
                    .as_ref()
                    .map_or("(no file)".to_string(), |p| p.display().to_string());
                let mut line = format!(
                    "done: {place}: {frames} frames, {clips} clip{} in {}",
                    if *clips == 1 { "" } else { "s" },
                    human_seconds(*seconds)
                );
                if let Some(fps) = frames_per_second {
                    line.push_str(&format!(", {fps:.2} frames/s from the first step"));
                }
                if let Some(peak) = peak_memory {
                    line.push_str(&format!("; {}", peak.describe()));
                }
                self.line(&line);
            }
            Event::Cancelled {
                output,
                frames,
                clips,
                ..
            } => {
                self.finish_bar();
                match output {
                    Some(path) => self.line(&format!(
                        "cancelled: kept {} ({frames} frames, {clips} complete clip{})",
                        path.display(),
                        if *clips == 1 { "" } else { "s" }
                    )),
                    None => self.line("cancelled before any frame was made"),
                }
            }
            Event::Failed { error, output, .. } => {
                self.finish_bar();
                eprintln!("error: {error}");
                if let Some(path) = output {
                    eprintln!(
                        "the clips made before the failure are in {}",
                        path.display()
                    );
                }
            }
            _ => {}
        }
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn done(&mut self) {
        self.finish_bar();
    }
}

fn human_seconds(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101_000000");
        // 2026-11-22 03:04:05 UTC
        assert_eq!(utc_stamp(1_795_316_645), "20261122_030405");
        assert_eq!(utc_stamp(951_782_400), "20000229_000000");
    }
}
