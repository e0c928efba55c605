//! What went wrong with the store, in words the app and the CLI show as they are.

use std::path::PathBuf;

/// A file the store could not use. The app shows these; none of them stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreProblem {
    /// The file could not be read as what it should hold, so it was renamed to `moved_to`
    /// (kept for the user to look at or repair) and the store started that concern afresh.
    SetAside {
        what: &'static str,
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
    /// The file was written by a newer Bastionless. It is left untouched; this version shows
    /// that concern empty and refuses to change it.
    Newer {
        what: &'static str,
        path: PathBuf,
        schema: u32,
    },
}

impl std::fmt::Display for StoreProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreProblem::SetAside {
                what,
                path,
                moved_to,
                reason,
            } => write!(
                f,
                "Your {what} file {} could not be read ({reason}). It was kept as {} and {what} \
                 start empty; fix that file and import it, or delete it.",
                path.display(),
                moved_to.display()
            ),
            StoreProblem::Newer { what, path, schema } => write!(
                f,
                "Your {what} file {} was written by a newer Bastionless (schema {schema}). It is \
                 left as it is and this version cannot change {what}; update Bastionless to use \
                 them.",
                path.display()
            ),
        }
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "your {what} file {} was written by a newer Bastionless (schema {schema}); this version \
         will not change it. Update Bastionless, or move the file away to start afresh.",
        path.display()
    )]
    Newer {
        what: &'static str,
        path: PathBuf,
        schema: u32,
    },
    /// A request the store refuses (a duplicate alias, an out-of-range setting, an unknown
    /// favorite); the text says what to do instead.
    #[error("{0}")]
    Refused(String),
    #[error("{} cannot be imported: {reason}", path.display())]
    Import { path: PathBuf, reason: String },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}
