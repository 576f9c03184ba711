//! `avatar-studio generate` through the real binary, on the CPU with the built-in demo weights:
//! the MP4 (H.264 + AAC, 25 fps, 48·n − 3 frames, sound as long as the picture), the JSON event
//! stream, the reference's flag spellings, a batch, and bad input (exit code 2, one line, no
//! file left behind).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ffprobe, num, sine, stream, write_wav};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avatar-studio"))
        .args(args)
        .output()
        .expect("run avatar-studio")
}

fn asset(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
        .display()
        .to_string()
}

/// A 128×64 portrait: not scaled up, so the frames stay 128×64 and the renders quick.
fn small_portrait(dir: &Path) -> String {
    let path = dir.join("small.png");
    image::RgbImage::from_fn(128, 64, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 4) as u8, 90])
    })
    .save(&path)
    .unwrap();
    path.display().to_string()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn frame_count(path: &Path) -> u64 {
    let probe = ffprobe(path);
    num(&stream(&probe, "video")["nb_read_frames"]) as u64
}

#[test]
fn two_clips_of_the_sample_make_the_reference_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("o.mp4");
    let out = run(&[
        "generate",
        "--image",
        &asset("sample-portrait.png"),
        "--audio",
        &asset("sample-voice.wav"),
        "--num-clip",
        "2",
        "--size",
        "384*256",
        "--seed",
        "5",
        "--device",
        "cpu",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("demo weights"), "stderr:\n{stderr}");

    let probe = ffprobe(&out_file);
    let video = stream(&probe, "video");
    let audio = stream(&probe, "audio");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["avg_frame_rate"], "25/1");
    assert_eq!(audio["codec_name"], "aac");
    let frames = num(&video["nb_read_frames"]) as u64;
    assert_eq!(frames, 48 * 2 - 3, "48·n − 3 frames for n = 2 clips");
    let video_seconds = num(&video["duration"]);
    let audio_seconds = num(&audio["duration"]);
    assert!(
        (video_seconds - audio_seconds).abs() <= 1.0 / 25.0 + 1e-6,
        "audio {audio_seconds} s vs video {video_seconds} s"
    );
    assert!(
        probe["format"]["tags"]["title"]
            .as_str()
            .is_some_and(|t| t.contains("demo weights")),
        "the MP4 says it was made with the demo weights: {}",
        probe["format"]
    );
}

#[test]
fn json_events_and_reference_flag_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("ref.mp4");
    let portrait = small_portrait(dir.path());
    // A launch line in the reference script's spelling, with its no-op flags.
    let out = run(&[
        "generate",
        "--task",
        "s2v-14B",
        "--image",
        &portrait,
        "--audio",
        &asset("sample-voice.wav"),
        "--size",
        "384*256",
        "--num_clip",
        "1",
        "--sample_steps",
        "2",
        "--infer_frames",
        "24",
        "--base_seed",
        "3",
        "--sample_solver",
        "euler",
        "--sample_guide_scale",
        "0",
        "--offload_model",
        "True",
        "--enable_online_decode",
        "--save_file",
        out_file.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    ok(&out);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"queued"));
    let planned = events
        .iter()
        .find(|e| e["event"] == "planned")
        .expect("planned event");
    assert_eq!(planned["plan"]["seed"], 3);
    assert_eq!(planned["plan"]["decode"], "streaming");
    assert_eq!(planned["plan"]["device"]["name"], "cpu");
    assert_eq!(planned["plan"]["model"]["kind"], "demo");
    // The memory plan travels with the first event of the job.
    let memory = &planned["plan"]["memory"];
    assert_eq!(memory["fits"], true);
    assert_eq!(memory["strategy"], "resident");
    assert!(memory["devices"].as_array().is_some_and(Vec::is_empty));
    assert!(
        memory["host"]["predicted_peak_gb"]
            .as_f64()
            .is_some_and(|g| g > 0.0)
    );
    // 24 frames per clip = 2 blocks, each reported with progress and frames.
    let blocks = events.iter().filter(|e| e["event"] == "clip_ready").count();
    assert_eq!(blocks, 2);
    let last_progress = events
        .iter()
        .rev()
        .find(|e| e["event"] == "progress" && e["stage"] == "rendering")
        .expect("rendering progress");
    assert_eq!(last_progress["done"], last_progress["total"]);
    assert!(last_progress["eta_seconds"].is_number());
    let finished = events.last().expect("events");
    assert_eq!(finished["event"], "finished");
    assert_eq!(finished["frames"], 24 - 3);
    assert!(
        finished["frames_per_second"]
            .as_f64()
            .is_some_and(|f| f > 0.0)
    );
    // No GPU here, so no reading of what the render held.
    assert!(finished["peak_memory"].is_null());
    assert_eq!(frame_count(&out_file), 21);
}

#[test]
fn random_weights_exclude_a_model_folder_and_the_demo() {
    for other in [["--demo", ""], ["--model", "/nowhere"]] {
        let mut args = vec!["generate", "--random-weights"];
        args.extend(other.iter().filter(|a| !a.is_empty()));
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--random-weights"), "{stderr}");
    }
}

#[test]
fn batch_renders_every_job() {
    let dir = tempfile::tempdir().unwrap();
    let voice = dir.path().join("short.wav");
    write_wav(&voice, &sine(180.0, 16_000, 2.2, 1), 16_000, 1, 16);
    let portrait = small_portrait(dir.path());
    let jobs = dir.path().join("jobs.toml");
    std::fs::write(
        &jobs,
        format!(
            "[[job]]\nimage = {portrait:?}\naudio = \"short.wav\"\nout = \"a.mp4\"\nseed = 1\n\n\
             [[job]]\nimage = \"small.png\"\naudio = \"short.wav\"\nprompt = \"another\"\npng_dir = \"b\"\n",
        ),
    )
    .unwrap();
    let out = run(&[
        "generate",
        "--batch",
        jobs.to_str().unwrap(),
        "--size",
        "384*256",
        "--frames-per-clip",
        "24",
        "--num-clip",
        "1",
        "--device",
        "cpu",
    ]);
    ok(&out);
    assert_eq!(frame_count(&dir.path().join("a.mp4")), 21);
    let pngs = std::fs::read_dir(dir.path().join("b"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert_eq!(pngs, 21);
    assert!(dir.path().join("b").join("audio.wav").is_file());
}

fn assert_bad_input(out: &Output, mentions: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(mentions),
        "`{mentions}` in the error: {stderr}"
    );
}

#[test]
fn bad_input_is_one_line_exit_2_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_image = small_portrait(d);
    let good_audio = asset("sample-voice.wav");
    let corrupt_image = d.join("corrupt.png");
    std::fs::write(&corrupt_image, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let text_as_audio = d.join("voice.wav");
    std::fs::write(&text_as_audio, b"this is not audio").unwrap();
    let short_audio = d.join("short.wav");
    write_wav(&short_audio, &sine(200.0, 16_000, 0.2, 1), 16_000, 1, 16);
    let tiny_image = d.join("tiny.png");
    image::RgbImage::new(8, 8).save(&tiny_image).unwrap();
    let missing = d.join("missing.png");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--image".into(), missing.display().to_string()],
            "missing.png".into(),
        ),
        (
            vec!["--image".into(), corrupt_image.display().to_string()],
            "corrupt.png".into(),
        ),
        (
            vec!["--image".into(), tiny_image.display().to_string()],
            "tiny.png".into(),
        ),
        (
            vec!["--audio".into(), text_as_audio.display().to_string()],
            "voice.wav".into(),
        ),
        (
            vec!["--audio".into(), short_audio.display().to_string()],
            "short.wav".into(),
        ),
        (vec!["--size".into(), "100*100".into()], "size".into()),
        (
            vec!["--frames-per-clip".into(), "50".into()],
            "frames".into(),
        ),
    ];
    for (i, (overrides, mentions)) in cases.iter().enumerate() {
        let out_file = d.join(format!("case{i}.mp4"));
        let mut args: Vec<String> = vec![
            "generate".into(),
            "--device".into(),
            "cpu".into(),
            "--out".into(),
            out_file.display().to_string(),
        ];
        let image = overrides
            .windows(2)
            .find(|w| w[0] == "--image")
            .map_or(good_image.clone(), |w| w[1].clone());
        let audio = overrides
            .windows(2)
            .find(|w| w[0] == "--audio")
            .map_or(good_audio.clone(), |w| w[1].clone());
        args.extend(["--image".into(), image, "--audio".into(), audio]);
        for pair in overrides.chunks(2) {
            if pair[0] != "--image" && pair[0] != "--audio" {
                args.extend(pair.iter().cloned());
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&refs);
        assert_bad_input(&out, mentions);
        assert!(!out_file.exists(), "case {i}: no output file");
    }
}

#[test]
fn a_checkpoint_folder_with_a_missing_component_is_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("Wan2.2-S2V-14B");
    std::fs::create_dir_all(&model).unwrap();
    // A DiT config and weights, but no VAE, T5, tokenizer or wav2vec2.
    std::fs::write(model.join("config.json"), "{}").unwrap();
    std::fs::write(model.join("diffusion_pytorch_model.safetensors"), b"").unwrap();
    let out_file = dir.path().join("o.mp4");
    let out = run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--image",
        &asset("sample-portrait.png"),
        "--audio",
        &asset("sample-voice.wav"),
        "--out",
        out_file.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_bad_input(&out, "Wan2.2-S2V-14B");
    assert!(!out_file.exists());
}

#[test]
fn cuda_is_refused_clearly_where_it_cannot_run() {
    if cfg!(feature = "cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("o.mp4");
    let out = run(&[
        "generate",
        "--image",
        &asset("sample-portrait.png"),
        "--audio",
        &asset("sample-voice.wav"),
        "--device",
        "cuda:0",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_bad_input(&out, "cuda");
    assert!(!out_file.exists());
}

#[test]
fn ctrl_c_cancels_and_keeps_a_playable_file() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let portrait = small_portrait(dir.path());
    let out_file = dir.path().join("interrupted.mp4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_avatar-studio"))
        .args([
            "generate",
            "--image",
            &portrait,
            "--audio",
            &asset("sample-voice.wav"),
            "--device",
            "cpu",
            "--seed",
            "1",
            "--json",
            "--out",
            out_file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn avatar-studio");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    // Interrupt once the first clip is complete.
    for line in lines.by_ref() {
        let line = line.expect("read a line");
        let event: serde_json::Value = serde_json::from_str(&line).expect("json");
        if event["event"] == "clip_ready" && event["clip_complete"] == true {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("kill -INT");
            assert!(status.success());
            break;
        }
    }
    let last = lines
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .last()
        .expect("events after the interrupt");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "Ctrl-C exit code");
    assert_eq!(last["event"], "cancelled");
    let frames = last["frames"].as_u64().expect("frames");
    assert!((45..=57).contains(&frames), "{frames} frames");
    assert_eq!(frame_count(&out_file), frames);
}
