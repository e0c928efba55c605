//! One concern's file on disk and the copy of it in memory.
//!
//! Every read and write of the file happens under the store directory's lock (see
//! [`DirLock`]), so a damaged file is set aside by one process only, and a write always starts
//! from what is on disk now rather than from what this process read earlier: two processes
//! adding favorites one after the other both keep theirs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::atomic::write_atomically;
use super::document::{self, Document, Unreadable};
use super::problem::{StoreError, StoreProblem};

/// An exclusive lock on the store directory, held while a file is read or rewritten. An
/// advisory OS lock (`flock` / `LockFileEx`), released by the OS if the holder dies.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(StoreError::io("open the lock file", &path))?;
        file.lock().map_err(StoreError::io("lock", &path))?;
        Ok(Self { _file: file })
    }
}

/// What identifies one version of a file: an atomic rewrite always gives a new inode on Unix,
/// and elsewhere the size and modification time tell versions apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// One concern: its path, its contents as last read or written, and whether this version may
/// write it.
pub(crate) struct Slot<D> {
    path: PathBuf,
    pub doc: D,
    /// The schema of a newer version's file, which this one must not overwrite.
    newer: Option<u32>,
    stamp: Option<Stamp>,
    /// What was wrong with the file each time it could not be used, oldest first.
    pub problems: Vec<StoreProblem>,
}

impl<D: Document> Slot<D> {
    /// Reads the file in `dir` (the caller holds the lock).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let mut slot = Self {
            path: dir.join(D::FILE),
            doc: D::default(),
            newer: None,
            stamp: None,
            problems: Vec::new(),
        };
        slot.reload()?;
        Ok(slot)
    }

    /// Whether the file changed since this process last read or wrote it.
    pub fn changed_on_disk(&self) -> bool {
        stamp(&self.path) != self.stamp
    }

    /// Reads the file again (the caller holds the lock). A damaged file is set aside and the
    /// concern starts empty; a newer one is left alone and the concern reads as empty.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.stamp = stamp(&self.path);
        self.newer = None;
        let text = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.doc = D::default();
                return Ok(());
            }
            Err(error) => return Err(StoreError::io("read", &self.path)(error)),
        };
        let parsed = match String::from_utf8(text) {
            Ok(text) => document::parse::<D>(&text),
            Err(_) => Err(Unreadable::Damaged("it is not UTF-8 text".into())),
        };
        match parsed {
            Ok(doc) => self.doc = doc,
            Err(Unreadable::Newer(schema)) => {
                self.doc = D::default();
                self.newer = Some(schema);
                let problem = StoreProblem::Newer {
                    what: D::WHAT,
                    path: self.path.clone(),
                    schema,
                };
                // Reported once, not at every reread of the same file.
                if !self.problems.contains(&problem) {
                    self.problems.push(problem);
                }
            }
            Err(Unreadable::Damaged(reason)) => {
                let moved_to = set_aside(&self.path)?;
                tracing::warn!(
                    "{} could not be read ({reason}); kept as {}",
                    self.path.display(),
                    moved_to.display()
                );
                self.doc = D::default();
                self.stamp = None;
                self.problems.push(StoreProblem::SetAside {
                    what: D::WHAT,
                    path: self.path.clone(),
                    moved_to,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Reads the file as it is now, lets `change` edit it, and writes it back atomically (the
    /// caller holds the lock). Nothing is written when `change` refuses.
    pub fn update<R>(
        &mut self,
        change: impl FnOnce(&mut D) -> Result<R, String>,
    ) -> Result<R, StoreError> {
        self.reload()?;
        if let Some(schema) = self.newer {
            return Err(StoreError::Newer {
                what: D::WHAT,
                path: self.path.clone(),
                schema,
            });
        }
        let mut doc = self.doc.clone();
        let result = change(&mut doc).map_err(StoreError::Refused)?;
        write_atomically(&self.path, document::render(&doc).as_bytes())
            .map_err(StoreError::io("write", &self.path))?;
        self.doc = doc;
        self.stamp = stamp(&self.path);
        Ok(result)
    }
}

/// Renames a damaged file to `NAME.unreadable-YYYYMMDDTHHMMSSZ` beside it (with `-2`, `-3`… if
/// that exists), so nothing ever overwrites it.
fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let target = path.with_file_name(format!("{name}.unreadable-{stamp}{suffix}"));
        if !target.exists() {
            std::fs::rename(path, &target).map_err(StoreError::io("set aside", path))?;
            return Ok(target);
        }
        n += 1;
    }
}
