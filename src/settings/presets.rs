//! Named settings: the built-in presets (TOML files shipped in `assets/presets/`, compiled in)
//! and the user's own presets, one TOML file each in a folder the front end chooses.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{GenerationSettings, SettingsError};

/// A named set of settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    /// The comment lines at the top of the preset file, shown as the preset's tooltip.
    pub description: String,
    pub settings: GenerationSettings,
    pub built_in: bool,
}

const BUILT_IN_SOURCES: [(&str, &str); 4] = [
    (
        "quick preview",
        include_str!("../../assets/presets/quick-preview.toml"),
    ),
    (
        "standard",
        include_str!("../../assets/presets/standard.toml"),
    ),
    (
        "high quality",
        include_str!("../../assets/presets/high-quality.toml"),
    ),
    (
        "long video",
        include_str!("../../assets/presets/long-video.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("preset file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("preset `{name}`: {source}")]
    Invalid {
        name: String,
        #[source]
        source: SettingsError,
    },
    #[error("preset `{name}` is built in and cannot be changed; save it under another name")]
    BuiltIn { name: String },
    #[error("preset `{name}` does not exist")]
    NotFound { name: String },
    #[error("a preset called `{name}` already exists; pick another name or delete it first")]
    Exists { name: String },
    #[error("`{name}` cannot be a preset name: use 1 to 64 letters, digits, spaces, `-` or `_`")]
    BadName { name: String },
    #[error("cannot serialise preset `{name}`: {source}")]
    Serialise {
        name: String,
        #[source]
        source: toml::ser::Error,
    },
    #[error("preset folder {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The presets every installation has, parsed from the shipped TOML files.
pub fn built_in_presets() -> Vec<Preset> {
    BUILT_IN_SOURCES
        .iter()
        .filter_map(|(name, source)| {
            // The files are compiled in and covered by a test; a broken one is left out rather
            // than taking the app down.
            let settings = GenerationSettings::from_toml(source).ok()?;
            Some(Preset {
                name: (*name).to_string(),
                description: description_of(source),
                settings,
                built_in: true,
            })
        })
        .collect()
}

/// Parses and validates the compiled-in preset files; used by the tests so that a broken
/// shipped preset fails the build's test run rather than vanishing from the menu.
pub fn check_built_in_sources() -> Result<(), PresetError> {
    for (name, source) in BUILT_IN_SOURCES {
        let settings =
            GenerationSettings::from_toml(source).map_err(|source| PresetError::Parse {
                path: PathBuf::from(format!("assets/presets/{}.toml", name.replace(' ', "-"))),
                source,
            })?;
        settings.validate().map_err(|source| PresetError::Invalid {
            name: name.to_string(),
            source,
        })?;
    }
    Ok(())
}

fn description_of(source: &str) -> String {
    source
        .lines()
        .take_while(|line| line.starts_with('#'))
        .map(|line| line.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

fn validate_name(name: &str) -> Result<(), PresetError> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PresetError::BadName {
            name: name.to_string(),
        })
    }
}

/// The user's presets: one `<name>.toml` per preset in `dir`.
#[derive(Debug, Clone)]
pub struct PresetStore {
    dir: PathBuf,
}

impl PresetStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    fn io_error(&self, path: &Path, source: io::Error) -> PresetError {
        PresetError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn is_built_in(name: &str) -> bool {
        BUILT_IN_SOURCES
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Built-in presets first, then the user's in name order. A user file that does not parse
    /// is reported in the second list instead of hiding the others.
    pub fn list(&self) -> (Vec<Preset>, Vec<PresetError>) {
        let mut presets = built_in_presets();
        let mut problems = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (presets, problems),
            Err(e) => {
                problems.push(self.io_error(&self.dir, e));
                return (presets, problems);
            }
        };
        let mut user = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let Some(name) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            match self.load_file(&path, &name) {
                Ok(preset) => user.push(preset),
                Err(e) => problems.push(e),
            }
        }
        user.sort_by_key(|p| p.name.to_lowercase());
        presets.extend(user);
        (presets, problems)
    }

    fn load_file(&self, path: &Path, name: &str) -> Result<Preset, PresetError> {
        let text = fs::read_to_string(path).map_err(|e| self.io_error(path, e))?;
        let settings =
            GenerationSettings::from_toml(&text).map_err(|source| PresetError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Preset {
            name: name.to_string(),
            description: description_of(&text),
            settings,
            built_in: false,
        })
    }

    /// Saves (or overwrites) a user preset; the settings must be valid.
    pub fn save(&self, name: &str, settings: &GenerationSettings) -> Result<(), PresetError> {
        validate_name(name)?;
        if Self::is_built_in(name) {
            return Err(PresetError::BuiltIn {
                name: name.to_string(),
            });
        }
        settings.validate().map_err(|source| PresetError::Invalid {
            name: name.to_string(),
            source,
        })?;
        let text = settings
            .to_toml()
            .map_err(|source| PresetError::Serialise {
                name: name.to_string(),
                source,
            })?;
        fs::create_dir_all(&self.dir).map_err(|e| self.io_error(&self.dir, e))?;
        let path = self.path_of(name);
        // Write then rename, so a crash mid-save never leaves a half-written preset.
        let partial = self.dir.join(format!(".{name}.toml.partial"));
        fs::write(&partial, text).map_err(|e| self.io_error(&partial, e))?;
        fs::rename(&partial, &path).map_err(|e| self.io_error(&path, e))
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<(), PresetError> {
        validate_name(to)?;
        for name in [from, to] {
            if Self::is_built_in(name) {
                return Err(PresetError::BuiltIn {
                    name: name.to_string(),
                });
            }
        }
        let old = self.path_of(from);
        if !old.is_file() {
            return Err(PresetError::NotFound {
                name: from.to_string(),
            });
        }
        let new = self.path_of(to);
        if new.exists() {
            return Err(PresetError::Exists {
                name: to.to_string(),
            });
        }
        fs::rename(&old, &new).map_err(|e| self.io_error(&new, e))
    }

    pub fn delete(&self, name: &str) -> Result<(), PresetError> {
        if Self::is_built_in(name) {
            return Err(PresetError::BuiltIn {
                name: name.to_string(),
            });
        }
        let path = self.path_of(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PresetError::NotFound {
                name: name.to_string(),
            }),
            Err(e) => Err(self.io_error(&path, e)),
        }
    }
}
