//! Replacing a file so that a crash at any instant leaves either the old or the new contents,
//! never a mix or an empty file.
//!
//! The new contents go to a temporary file in the same directory, which is flushed to disk and
//! then renamed over the target (a rename within one file system is atomic); the directory is
//! flushed too, so the rename itself survives a power cut. `tempfile` creates the temporary file
//! with mode 0600 and removes it if anything fails before the rename.

use std::io::Write as _;
use std::path::Path;

/// How temporary files are named, so that those of a writer that was killed can be found.
const TEMP_PREFIX: &str = ".write-";
const TEMP_SUFFIX: &str = ".tmp";

/// Writes `contents` to `path` atomically and durably. `path`'s directory must exist.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Deletes the temporary files of writers that died before renaming them. Only safe while
/// holding the lock every writer in `dir` holds while writing.
pub(crate) fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX)
            && name.ends_with(TEMP_SUFFIX)
            && let Err(error) = std::fs::remove_file(entry.path())
        {
            tracing::debug!("could not remove {name}: {error}");
        }
    }
}

/// Flushes a directory's entries (the rename) to disk. Windows has no such call; NTFS journals
/// the rename itself.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_contents_replace_the_old_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("favorites.toml");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["favorites.toml"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        write_atomically(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
