//! The engine with the demo model on the CPU: cancel after the first clip leaves a playable MP4
//! holding that clip; the same seed gives the same frames and another seed different ones;
//! pause holds the render; a 200-clip render keeps its memory flat.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use avatar_studio::engine::{Command, Engine, Event, Job, JobId, OutputTarget};
use avatar_studio::inputs::RenderInputs;
use avatar_studio::media::frame::RgbFrame;
use avatar_studio::pipeline::ModelSpec;
use avatar_studio::settings::{ClipCount, DeviceChoice, GenerationSettings, Seed, SizeArea};
use common::{ffprobe, num, sine, stream, write_wav};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

fn settings(clips: u32, seed: u64) -> GenerationSettings {
    GenerationSettings {
        size: SizeArea {
            width: 384,
            height: 256,
        },
        num_clips: ClipCount::AtMost(clips),
        seed: Seed::Fixed(seed),
        devices: DeviceChoice::Cpu,
        ..GenerationSettings::default()
    }
}

/// A 128×64 portrait: images under the size's area are not scaled up, so the frames are
/// 128×64 and the CPU renders stay quick.
/// Written once per test process: the tests run in parallel and must never read it half-made.
fn small_portrait() -> PathBuf {
    static PORTRAIT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PORTRAIT
        .get_or_init(|| {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("engine-portrait-128x64-{}.png", std::process::id()));
            let img = image::RgbImage::from_fn(128, 64, |x, y| {
                image::Rgb([(x * 2) as u8, (y * 4) as u8, ((x + y) % 256) as u8])
            });
            img.save(&path).unwrap_or_else(|e| panic!("{e}"));
            path
        })
        .clone()
}

fn job(audio: &Path, settings: GenerationSettings, output: OutputTarget) -> Job {
    let inputs =
        RenderInputs::load(&small_portrait(), audio, settings).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (inputs.portrait.width(), inputs.portrait.height()),
        (128, 64)
    );
    Job::new(inputs, ModelSpec::demo(), output)
}

/// Waits for the next event, failing the test after `limit`.
fn next(engine: &Engine, limit: Duration) -> Event {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(event) = engine.next_event(Duration::from_millis(100)) {
            return event;
        }
        assert!(Instant::now() < deadline, "no event within {limit:?}");
    }
}

/// Runs one job to its end; returns every event.
fn run_to_end(engine: &Engine, job: Job) -> Vec<Event> {
    engine.submit(job);
    let mut events = Vec::new();
    loop {
        let event = next(engine, Duration::from_secs(600));
        let end = event.ends_job();
        events.push(event);
        if end {
            return events;
        }
    }
}

fn frames_of(events: &[Event]) -> Vec<RgbFrame> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ClipReady { frames, .. } => Some(frames.as_ref().clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn cancel_after_the_first_clip_keeps_a_playable_file_with_that_clip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cancelled.mp4");
    let engine = Engine::start().unwrap();
    engine.submit(job(
        &asset("sample-voice.wav"),
        settings(4, 11),
        OutputTarget::Mp4(out.clone()),
    ));
    let mut job_id: Option<JobId> = None;
    let mut cancelled = None;
    while cancelled.is_none() {
        match next(&engine, Duration::from_secs(600)) {
            Event::Queued { job, .. } => job_id = Some(job),
            Event::ClipReady {
                clip: 0,
                clip_complete: true,
                ..
            } => {
                assert!(engine.send(Command::Cancel(job_id.expect("queued first"))));
            }
            Event::Cancelled {
                output,
                frames,
                clips,
                ..
            } => cancelled = Some((output, frames, clips)),
            Event::Finished { .. } => panic!("finished although cancelled"),
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    let (output, frames, clips) = cancelled.unwrap();
    assert_eq!(output.as_deref(), Some(out.as_path()));
    // Clip 0 is 48 − 3 frames; the cancel lands within one more block (12 frames).
    assert!(clips >= 1, "the first clip is complete");
    assert!((45..=45 + 12).contains(&frames), "{frames} frames kept");
    let probe = ffprobe(&out);
    assert_eq!(
        num(&stream(&probe, "video")["nb_read_frames"]) as u64,
        frames
    );
    assert_eq!(stream(&probe, "audio")["codec_name"], "aac");
}

#[test]
fn same_seed_same_frames_other_seed_other_frames() {
    let engine = Engine::start().unwrap();
    let voice = asset("sample-voice.wav");
    let first = frames_of(&run_to_end(
        &engine,
        job(&voice, settings(2, 42), OutputTarget::EventsOnly),
    ));
    // A second engine: nothing cached may leak into the result.
    let other_engine = Engine::start().unwrap();
    let again = frames_of(&run_to_end(
        &other_engine,
        job(&voice, settings(2, 42), OutputTarget::EventsOnly),
    ));
    let different = frames_of(&run_to_end(
        &engine,
        job(&voice, settings(2, 43), OutputTarget::EventsOnly),
    ));
    assert_eq!(first.len(), 93);
    assert!(first == again, "same seed, same frames, bit for bit");
    assert_eq!(different.len(), 93);
    let differing = first
        .iter()
        .zip(&different)
        .filter(|(a, b)| a.rgb != b.rgb)
        .count();
    assert!(
        differing > 80,
        "another seed changes the frames ({differing} of 93 differ)"
    );
}

#[test]
fn pause_holds_the_render_until_resumed() {
    let engine = Engine::start().unwrap();
    engine.submit(job(
        &asset("sample-voice.wav"),
        settings(1, 3),
        OutputTarget::EventsOnly,
    ));
    // Pause at the first rendered block, check that no block arrives while paused.
    loop {
        match next(&engine, Duration::from_secs(600)) {
            Event::ClipReady { .. } => break,
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    engine.send(Command::Pause);
    let mut paused = false;
    let hold_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < hold_until || !paused {
        if let Some(event) = engine.next_event(Duration::from_millis(100)) {
            match event {
                Event::Paused { .. } => paused = true,
                Event::ClipReady { .. } if paused => panic!("a block was made while paused"),
                Event::Finished { .. } => panic!("finished while paused"),
                _ => {}
            }
        }
    }
    engine.send(Command::Resume);
    let events = loop {
        let event = next(&engine, Duration::from_secs(600));
        if matches!(event, Event::Finished { .. }) {
            break event;
        }
    };
    assert!(matches!(events, Event::Finished { frames: 45, .. }));
}

/// Resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn two_hundred_clips_keep_memory_flat() {
    const CLIPS: u32 = 200;
    let dir = tempfile::tempdir().unwrap();
    let voice = dir.path().join("long.wav");
    // Enough voice for 200 clips of 12 frames (0.48 s each).
    write_wav(
        &voice,
        &sine(150.0, 16_000, f64::from(CLIPS) * 0.48 + 1.0, 1),
        16_000,
        1,
        16,
    );
    let out = dir.path().join("long.mp4");
    let mut s = settings(CLIPS, 9);
    // One block per clip keeps the suite within CI's time: each clip still runs the sink-less
    // streaming loop, the ring caches, the decoder and the writer.
    s.frames_per_clip = 12;
    let engine = Engine::start().unwrap();
    engine.submit(job(&voice, s, OutputTarget::Mp4(out.clone())));
    let mut rss_after_clip = Vec::new();
    let started = Instant::now();
    loop {
        match next(&engine, Duration::from_secs(1200)) {
            Event::ClipReady {
                clip_complete: true,
                ..
            } => rss_after_clip.push(rss_bytes()),
            Event::Finished { frames, clips, .. } => {
                assert_eq!(clips, CLIPS as usize);
                assert!(frames > 0);
                break;
            }
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    let mb = |b: u64| b as f64 / 1e6;
    let early = rss_after_clip[10..30].iter().copied().max().unwrap_or(0);
    let late = rss_after_clip[CLIPS as usize - 20..]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    println!(
        "{CLIPS} clips in {:.1} s; RSS after clip 10-30: max {:.1} MB, after the last 20: max {:.1} MB, growth {:.1} MB",
        started.elapsed().as_secs_f64(),
        mb(early),
        mb(late),
        mb(late.saturating_sub(early))
    );
    assert!(
        late <= early + 16 * 1024 * 1024,
        "memory grew from {:.1} MB to {:.1} MB",
        mb(early),
        mb(late)
    );
    let probe = ffprobe(&out);
    assert_eq!(
        num(&stream(&probe, "video")["nb_read_frames"]) as u64,
        12 * u64::from(CLIPS) - 3
    );
}

#[test]
fn a_job_the_plan_refuses_fails_clearly_and_the_engine_runs_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let refused_out = dir.path().join("refused.mp4");
    let engine = Engine::start().unwrap();
    // A placement this version cannot run: the planner refuses before anything loads.
    let mut refused = settings(1, 5);
    refused.placement = Some(avatar_studio::memory::Placement::ResidentKvFp8);
    let events = run_to_end(
        &engine,
        job(
            &asset("sample-voice.wav"),
            refused,
            OutputTarget::Mp4(refused_out.clone()),
        ),
    );
    let planned = events.iter().find_map(|e| match e {
        Event::Planned { plan, .. } => Some(plan.memory.clone()),
        _ => None,
    });
    let memory = planned.expect("a planned event with the memory plan");
    assert!(!memory.can_start());
    match events.last() {
        Some(Event::Failed { error, .. }) => {
            assert!(error.contains("does not fit"), "{error}");
            assert!(error.contains("resident-kv-fp8"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        !events.iter().any(|e| matches!(e, Event::Progress { .. })),
        "nothing ran"
    );
    assert!(!refused_out.exists());

    // The same engine renders the next job.
    let good_out = dir.path().join("good.mp4");
    let events = run_to_end(
        &engine,
        job(
            &asset("sample-voice.wav"),
            settings(1, 5),
            OutputTarget::Mp4(good_out.clone()),
        ),
    );
    assert!(
        matches!(events.last(), Some(Event::Finished { .. })),
        "{:?}",
        events.last()
    );
    let plan = events
        .iter()
        .find_map(|e| match e {
            Event::Planned { plan, .. } => Some(plan.memory.clone()),
            _ => None,
        })
        .expect("planned");
    assert!(plan.can_start());
    assert_eq!(plan.strategy, avatar_studio::memory::Placement::Resident);
    assert!(good_out.exists());

    // The smallest placement, forced: the engine loads the DiT with its blocks parked in host
    // RAM, keeps the step caches there and runs the step-batched schedule (the frames equal the
    // resident ones: `tests/step_batched.rs`).
    let streamed_out = dir.path().join("streamed.mp4");
    let mut streamed = settings(1, 5);
    streamed.placement = Some(avatar_studio::memory::Placement::LayerStreamingKvOnHost);
    let events = run_to_end(
        &engine,
        job(
            &asset("sample-voice.wav"),
            streamed,
            OutputTarget::Mp4(streamed_out.clone()),
        ),
    );
    assert!(
        matches!(events.last(), Some(Event::Finished { .. })),
        "{:?}",
        events.last()
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Planned { plan, .. }
        if plan.memory.strategy == avatar_studio::memory::Placement::LayerStreamingKvOnHost
            && plan.memory.can_start()))
    );
    assert!(streamed_out.exists());
}
