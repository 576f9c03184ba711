//! `generate --batch jobs.toml`: many renders in one process, so the models load once.
//!
//! ```toml
//! [[job]]
//! image = "alice.png"          # paths are relative to the TOML file
//! audio = "alice.wav"
//! prompt = "A woman talking"   # optional; else the --prompt flag
//! out = "alice.mp4"            # or png_dir = "alice-frames"; else a default name
//! seed = 7                     # optional; else the --seed flag
//! ```
//! Every other setting comes from the command line flags (or their preset).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{PlannedRender, default_output_path};
use crate::engine::OutputTarget;
use crate::settings::{GenerationSettings, Seed};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchFile {
    #[serde(default)]
    job: Vec<BatchJob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchJob {
    image: PathBuf,
    audio: PathBuf,
    prompt: Option<String>,
    out: Option<PathBuf>,
    png_dir: Option<PathBuf>,
    seed: Option<u64>,
}

/// Reads the batch file; errors name the file and the job (1-based).
pub fn read_batch(path: &Path, base: &GenerationSettings) -> Result<Vec<PlannedRender>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the batch file: {e}", path.display()))?;
    let file: BatchFile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    if file.job.is_empty() {
        return Err(format!(
            "{}: no [[job]] entries; each needs image and audio",
            path.display()
        ));
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            folder.join(p)
        }
    };
    file.job
        .into_iter()
        .enumerate()
        .map(|(i, job)| {
            let mut settings = base.clone();
            if let Some(prompt) = job.prompt {
                settings.prompt = prompt;
            }
            if let Some(seed) = job.seed {
                settings.seed = Seed::Fixed(seed);
            }
            let output = match (job.out, job.png_dir) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{}: job {}: give `out` or `png_dir`, not both",
                        path.display(),
                        i + 1
                    ));
                }
                (Some(out), None) => OutputTarget::Mp4(resolve(&out)),
                (None, Some(dir)) => OutputTarget::PngSequence(resolve(&dir)),
                (None, None) => {
                    let name = default_output_path(&settings);
                    let stem = name
                        .file_stem()
                        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                    OutputTarget::Mp4(name.with_file_name(format!("{stem}_job{}.mp4", i + 1)))
                }
            };
            Ok(PlannedRender {
                image: resolve(&job.image),
                audio: resolve(&job.audio),
                settings,
                output,
            })
        })
        .collect()
}
