//! Entry point: parses arguments and hands over to the studio or a headless subcommand. Bad
//! input ends with a one-line error and exit code 2; other failures with exit code 1.

use std::process::ExitCode;

use clap::Parser;

use avatar_studio::cli::{CheckArgs, Cli, Command, InspectArgs};
use avatar_studio::inputs::RenderInputs;
use avatar_studio::media::output_path::check_output_file;

/// Exit code for input the user must fix (a file, a flag, a setting).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    // symphonia logs its own probe failures; ours name the file and what to do.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,symphonia_core=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check(args)) => check(&args),
        Some(Command::Inspect(args)) => inspect(&args),
        Some(Command::Generate(args)) => avatar_studio::headless::generate(&args),
        Some(Command::Plan(args)) => avatar_studio::headless::plan::plan_command(&args),
        Some(Command::Bench(args)) => avatar_studio::headless::bench::bench_command(&args),
        None => studio(cli.files),
    }
}

#[cfg(feature = "gui")]
fn studio(open_files: Vec<std::path::PathBuf>) -> ExitCode {
    let options = avatar_studio::ui::StudioOptions {
        open_files,
        ..Default::default()
    };
    match avatar_studio::ui::run_studio(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "gui"))]
fn studio(_open_files: Vec<std::path::PathBuf>) -> ExitCode {
    eprintln!(
        "error: this build has no studio window (built without the `gui` feature); use a subcommand, see --help"
    );
    ExitCode::from(EXIT_BAD_INPUT)
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn check(args: &CheckArgs) -> ExitCode {
    let settings = match args.settings.resolve() {
        Ok(settings) => settings,
        Err(message) => return bad_input(message),
    };
    if let Some(out) = &args.out
        && let Err(e) = check_output_file(out)
    {
        return bad_input(e);
    }
    let inputs = match RenderInputs::load(&args.image, &args.audio, settings) {
        Ok(inputs) => inputs,
        Err(e) => return bad_input(e),
    };
    let summary = inputs.summary();
    if args.json {
        match serde_json::to_string(&summary) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{summary}");
    }
    ExitCode::SUCCESS
}

/// Prints the folder report (text or JSON) on stdout; an incomplete folder also gets the
/// one-line `error:` naming its first problem, and exit code 2.
fn inspect(args: &InspectArgs) -> ExitCode {
    use avatar_studio::weights::folder_report::{EncoderConfigs, inspect_folder};
    let encoders = match &args.encoders {
        None => EncoderConfigs::default(),
        Some(path) => match EncoderConfigs::from_file(path) {
            Ok(e) => e,
            Err(e) => return bad_input(e),
        },
    };
    let report = match inspect_folder(&args.model, args.lora.as_deref(), &encoders) {
        Ok(report) => report,
        Err(e) => return bad_input(e),
    };
    if args.json {
        match serde_json::to_string(&report) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    match report.summary_line() {
        Some(line) => bad_input(line),
        None => ExitCode::SUCCESS,
    }
}
