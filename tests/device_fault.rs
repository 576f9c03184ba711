//! A failure on the compute backend's own device thread mid-render (burn-cuda runs GPU work on
//! threads named `DSD-…`, and a task there that cannot allocate logs a warning and carries on
//! with garbage): the job ends with a clear error naming the plan, keeps the clips made before
//! it, and the engine renders the next job. The failure is simulated with a panicking thread of
//! that name while a demo render runs on the CPU. Its own test process: the watch is global.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use avatar_studio::engine::device_faults::is_device_thread;
use avatar_studio::engine::{Engine, Event, Job, OutputTarget};
use avatar_studio::inputs::RenderInputs;
use avatar_studio::pipeline::ModelSpec;
use avatar_studio::settings::{ClipCount, DeviceChoice, GenerationSettings, Seed, SizeArea};

fn portrait(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("portrait-128x64.png");
    image::RgbImage::from_fn(128, 64, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 4) as u8, ((x + y) % 256) as u8])
    })
    .save(&path)
    .unwrap_or_else(|e| panic!("{e}"));
    path
}

fn job(dir: &std::path::Path, name: &str) -> Job {
    let settings = GenerationSettings {
        size: SizeArea {
            width: 384,
            height: 256,
        },
        num_clips: ClipCount::AtMost(2),
        seed: Seed::Fixed(5),
        devices: DeviceChoice::Cpu,
        ..GenerationSettings::default()
    };
    let voice = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/sample-voice.wav");
    let inputs =
        RenderInputs::load(&portrait(dir), &voice, settings).unwrap_or_else(|e| panic!("{e}"));
    Job::new(
        inputs,
        ModelSpec::demo(),
        OutputTarget::PngSequence(dir.join(name)),
    )
}

fn next(engine: &Engine) -> Event {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(event) = engine.next_event(Duration::from_millis(100)) {
            return event;
        }
        assert!(Instant::now() < deadline, "no event within 10 minutes");
    }
}

#[test]
fn the_backends_thread_names_are_recognised() {
    assert!(is_device_thread(Some("DSD-0-0")));
    assert!(is_device_thread(Some("DSU-3-1")));
    assert!(!is_device_thread(Some("avatar-studio-engine")));
    assert!(!is_device_thread(None));
}

#[test]
fn a_device_thread_failure_ends_the_job_clearly_and_the_engine_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::start().unwrap_or_else(|e| panic!("{e}"));
    engine.submit(job(dir.path(), "failed"));
    let (error, output) = loop {
        match next(&engine) {
            Event::ClipReady {
                clip: 0,
                clip_complete: true,
                ..
            } => {
                // What burn-cuda's device thread does when the GPU refuses an allocation.
                let failing = std::thread::Builder::new()
                    .name("DSD-0-0".into())
                    .spawn(|| panic!("can't allocate buffer of size: 1328398336"))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(failing.join().is_err());
            }
            Event::Failed { error, output, .. } => break (error, output),
            Event::Finished { .. } => panic!("the render finished despite the device failure"),
            _ => {}
        }
    };
    assert!(error.contains("ran out of memory"), "{error}");
    assert!(error.contains("1328398336"), "{error}");
    assert!(
        error.contains("plan:"),
        "the plan it ran under is not named: {error}"
    );
    // The first clip (45 frames) was made before the failure and is kept; what came after is not.
    let kept = output.unwrap_or_else(|| panic!("nothing kept"));
    let frames = std::fs::read_dir(&kept)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert_eq!(frames, 45, "frames kept in {}", kept.display());

    // The engine loads afresh and renders the next job.
    engine.submit(job(dir.path(), "next"));
    loop {
        match next(&engine) {
            Event::Finished { frames, .. } => {
                assert_eq!(frames, 93);
                break;
            }
            Event::Failed { error, .. } => panic!("the next job failed: {error}"),
            _ => {}
        }
    }
}
