//! `avatar-studio plan`: asks the memory planner about a render without running it, for this
//! machine or for assumed hardware, and prints the answer as text or one JSON object.

use std::io::Write as _;
use std::process::ExitCode;

use crate::cli::PlanArgs;
use crate::inputs::RenderInputs;
use crate::memory::{Hardware, ModelConfigs, plan, plan_request};
use crate::pipeline::{ModelOrigin, ModelSpec};
use crate::settings::DeviceChoice;

/// Exit code for input the user must fix.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of a plan that does not fit.
const EXIT_DOES_NOT_FIT: u8 = 1;

pub fn plan_command(args: &PlanArgs) -> ExitCode {
    match answer(args) {
        Ok((text, fits)) => {
            // A closed pipe (`plan | head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            if fits {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_DOES_NOT_FIT)
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn answer(args: &PlanArgs) -> Result<(String, bool), String> {
    let settings = args.settings.resolve()?;
    let configs = if let Some(folder) = &args.model {
        ModelSpec {
            origin: ModelOrigin::Checkpoint {
                folder: folder.clone(),
                lora: None,
            },
            encoders: args.encoders.clone(),
            fp8: settings.fp8,
            stream_layers: false,
        }
        .configs()
        .map_err(|e| e.to_string())?
    } else if args.demo {
        ModelSpec::demo().configs().map_err(|e| e.to_string())?
    } else {
        ModelConfigs::released()
    };
    let (frame, audio_seconds) = match (&args.image, &args.audio) {
        (Some(image), Some(audio)) => {
            let inputs =
                RenderInputs::load(image, audio, settings.clone()).map_err(|e| e.to_string())?;
            let s = inputs.summary();
            ((s.width, s.height), Some(s.audio_seconds))
        }
        _ => ((settings.size.width, settings.size.height), None),
    };
    let hardware = if args.assume_gpus.is_some() || args.assume_host_ram.is_some() {
        let host_ram_gb = match args.assume_host_ram {
            Some(gb) => gb,
            None => crate::memory::machine::available_host_ram() as f64 / 1e9,
        };
        let gpus_gb = args.assume_gpus.clone().unwrap_or_default();
        if let Some(bad) = gpus_gb.iter().find(|g| !(g.is_finite() && **g > 0.0)) {
            return Err(format!(
                "--assume-gpus: `{bad}` is not a GPU size; give GB per GPU, e.g. 24,24"
            ));
        }
        if !(host_ram_gb.is_finite() && host_ram_gb > 0.0) {
            return Err("--assume-host-ram: give the host RAM in GB, e.g. 64".into());
        }
        Hardware::Assumed {
            gpus_gb,
            host_ram_gb,
        }
    } else {
        let gpu = match &settings.devices {
            DeviceChoice::Cpu => None,
            DeviceChoice::Auto => (crate::engine::device::nvidia_gpu_count() > 0).then_some(0),
            DeviceChoice::Cuda(ids) => Some(ids.first().copied().unwrap_or(0)),
        };
        Hardware::ThisMachine { gpu }
    };
    let plan = plan(&plan_request(
        &configs,
        &settings,
        frame,
        audio_seconds,
        &hardware,
    ));
    let text = if args.json {
        plan.to_json().to_string()
    } else {
        plan.to_text()
    };
    Ok((text, plan.can_start()))
}
