//! Checks an output location before a render starts, so a missing or read-only folder is
//! reported at once instead of after minutes of GPU work.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::MediaError;

/// Seconds since the Unix epoch (0 if the clock is before it): the stamp in output names and
/// the history's finish times.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The folder a file path will be written into (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Verifies that `path` can be created: its folder exists and accepts a new file, and the
/// path itself is not a folder.
pub fn check_output_file(path: &Path) -> Result<(), MediaError> {
    if path.is_dir() {
        return Err(MediaError::OutputInvalid {
            path: path.to_path_buf(),
            detail: "is a folder; give a file name, e.g. out.mp4".into(),
        });
    }
    check_writable_dir(path, &parent_dir(path))
}

/// Verifies that `dir` exists (or can be created inside an existing folder) and is writable.
pub fn check_output_dir(dir: &Path) -> Result<(), MediaError> {
    if dir.is_dir() {
        return check_writable_dir(dir, dir);
    }
    if dir.exists() {
        return Err(MediaError::OutputInvalid {
            path: dir.to_path_buf(),
            detail: "exists and is not a folder".into(),
        });
    }
    check_writable_dir(dir, &parent_dir(dir))
}

fn check_writable_dir(path: &Path, dir: &Path) -> Result<(), MediaError> {
    if !dir.is_dir() {
        return Err(MediaError::OutputDirMissing {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    // Permission bits do not tell the whole story (root, read-only mounts, ACLs): try it.
    let probe = dir.join(format!(".avatar-studio-write-test-{}", std::process::id()));
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(MediaError::OutputNotWritable {
            path: path.to_path_buf(),
            source,
        }),
    }
}
