//! `avatar-studio plan`: the JSON fields scripts rely on, answers for assumed hardware (the
//! released 14B model on one big GPU fits, on 24 GB cards with this version's placements it
//! does not and says what would), the demo model on this machine, and a refused render.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avatar-studio"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_released_model_fits_one_big_gpu() {
    let out = run(&[
        "plan",
        "--assume-gpus",
        "141",
        "--assume-host-ram",
        "256",
        "--fp8",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["fits"], true);
    assert_eq!(v["strategy"], "resident");
    assert!(v["expected_fps"].as_f64().is_some_and(|f| f > 0.0));
    let d = &v["devices"][0];
    assert_eq!(d["index"], 0);
    assert_eq!(d["total_gb"].as_f64(), Some(141.0));
    let peak = d["predicted_peak_gb"].as_f64().unwrap();
    let parts: f64 = d["components"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(
        (peak - parts).abs() < 0.02,
        "peak {peak} = sum of parts {parts}"
    );
    // This build quantises fp8 weights for the reference's numerics but holds them in bf16
    // (16.3 G parameters × 2 bytes), and the plan must count what is really held.
    assert!((d["components"]["DiT weights"].as_f64().unwrap() - 32.6).abs() < 0.1);
}

#[test]
fn four_24_gb_cards_beside_64_gb_of_ram_do_not_fit_bf16_and_the_plan_says_what_would() {
    let out = run(&[
        "plan",
        "--assume-gpus",
        "24,24,24,24",
        "--assume-host-ram",
        "64",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["fits"], false);
    assert_eq!(v["devices"].as_array().map(Vec::len), Some(4));
    assert!(v["verdict"].as_str().unwrap().contains("24.0 GB"));
    let suggestions = v["suggestions"].as_array().unwrap();
    assert!(!suggestions.is_empty());
    assert!(
        suggestions
            .iter()
            .all(|s| s["predicted_peak_gb"].as_f64().unwrap() <= 24.0)
    );
    // The text form says the same in words.
    let text = run(&["plan", "--assume-gpus", "24", "--assume-host-ram", "64"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("fits: no"), "{text}");
    assert!(text.contains("would fit"), "{text}");
}

#[test]
fn the_demo_model_plans_on_this_machine_with_the_inputs() {
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/");
    let out = run(&[
        "plan",
        "--demo",
        "--device",
        "cpu",
        "--image",
        &format!("{assets}sample-portrait.png"),
        "--audio",
        &format!("{assets}sample-voice.wav"),
        "--size",
        "384*256",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["fits"], true);
    assert_eq!(v["device"], "cpu");
    // The portrait is taller than wide: the frame follows it.
    assert_eq!(v["frame"]["width"], 256);
    assert_eq!(v["frame"]["height"], 384);
}

#[test]
fn bad_plan_flags_are_exit_2() {
    let out = run(&["plan", "--assume-gpus", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--assume-gpus"));
    let out = run(&["plan", "--placement", "everywhere"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bench_times_each_kernel_and_reports_throughput() {
    let out = run(&[
        "bench", "--device", "cpu", "--small", "--iters", "1", "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = lines.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "gemm_1024x1024x1024",
            "gemm_1584x640x1728",
            "gemm_396x640x640",
            "attn_396:1914",
            "attn_1584:1584",
            "block_198:947",
            "forward5_198:947",
            "forward5_198:947_kv_host"
        ]
    );
    for m in &lines {
        assert!(m["ms"].as_f64().is_some_and(|v| v > 0.0), "{m}");
        assert!(m["cold_ms"].as_f64().is_some_and(|v| v > 0.0), "{m}");
        assert!(m["tflops"].as_f64().is_some_and(|v| v > 0.0), "{m}");
    }
    let call = &lines[lines.len() - 1];
    assert!(
        call["output_fps"].as_f64().is_some_and(|v| v > 0.0),
        "{call}"
    );
    // The same call with its ring in host RAM reports what it copied in.
    assert!(
        call["host_to_device_gb"].as_f64().is_some_and(|v| v > 0.0),
        "{call}"
    );
}

#[test]
fn bench_times_a_placement_and_its_host_copies() {
    let out = run(&[
        "bench",
        "--device",
        "cpu",
        "--small",
        "--iters",
        "1",
        "--json",
        "--placement",
        "layer-streaming-kv-host",
        "--size",
        "384*256",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let report = &v["report"];
    assert_eq!(report["placement"], "layer-streaming-kv-host");
    assert!(report["dit_fps"].as_f64().is_some_and(|f| f > 0.0), "{v}");
    // Every block copies the parked layers and three quarters of each step's ring in.
    assert!(
        report["host_to_device_gb_per_block"]
            .as_f64()
            .is_some_and(|g| g > 0.0),
        "{v}"
    );
    assert!(
        report["pinned_host_gb"].as_f64().is_some_and(|g| g > 0.0),
        "{v}"
    );
    let out = run(&["bench", "--device", "cpu", "--placement", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
}
