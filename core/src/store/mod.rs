//! The store: what a user keeps between runs — favorites per account, recent connections,
//! per-host settings and app settings — as TOML files under the OS config directory.
//!
//! One file per concern (`favorites.toml`, `recents.toml`, `hosts.toml`, `settings.toml`), each
//! with a `schema` number, so a damaged one costs only that concern and each can evolve alone.
//! Files are replaced atomically; a file that cannot be read is set aside with a timestamp and
//! reported ([`Store::problems`]), and one from a newer version is left alone and not written.
//! The GUI, the tray and the CLI may run at once: every change rereads the file under a lock on
//! the directory and writes it back whole, so no process undoes another's change, and
//! [`Store::watch`] lets the app notice the others' changes.
//!
//! Nothing secret is kept here: the store has no field for a password, token or key (an
//! identity file is kept as a path).
//!
//! ```no_run
//! # use bastionless_core::store::*;
//! let store = Store::open_default()?;
//! for problem in store.problems() {
//!     eprintln!("{problem}");
//! }
//! for favorite in store.favorites() {
//!     println!("{} ({})", favorite.label(), favorite.action);
//! }
//! # Ok::<(), StoreError>(())
//! ```

mod action;
mod atomic;
mod document;
mod exchange;
mod favorites;
mod host_settings;
mod problem;
mod recents;
mod settings;
mod slot;
mod watch;

#[cfg(test)]
mod tests;

pub use action::Action;
pub use exchange::ImportReport;
pub use favorites::{AccountInstance, Favorite, check_alias};
pub use host_settings::{HostSettings, RoutePreference};
pub use problem::{StoreError, StoreProblem};
pub use recents::{RECENTS_KEPT, Recent};
pub use settings::{AppSettings, CloseToTray, SSM_POOL_RANGE, SshVia, Theme};
pub use watch::StoreWatch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::inventory::HostKey;
use favorites::FavoritesFile;
use host_settings::HostsFile;
use recents::RecentsFile;
use settings::SettingsFile;
use slot::{DirLock, Slot};

/// The environment variable that moves the store elsewhere (tests, portable installs).
pub const CONFIG_DIR_ENV: &str = "BASTIONLESS_CONFIG_DIR";

/// The user's store. Cheap to clone; clones share one copy, so the GUI, the tray and the engine
/// see each other's changes at once.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    /// Counts changes, this process's and those reread from disk, for [`Store::generation`].
    generation: AtomicU64,
}

struct State {
    favorites: Slot<FavoritesFile>,
    recents: Slot<RecentsFile>,
    hosts: Slot<HostsFile>,
    settings: Slot<SettingsFile>,
}

impl Store {
    /// Where the store lives: `$BASTIONLESS_CONFIG_DIR` when set, else the OS config directory
    /// (`~/.config/bastionless` on Linux, `~/Library/Application Support/bastionless` on macOS,
    /// `%APPDATA%\bastionless\config` on Windows); `None` without a home directory.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        directories::ProjectDirs::from("", "", "bastionless").map(|d| d.config_dir().to_owned())
    }

    /// The store in [`Store::default_dir`].
    pub fn open_default() -> Result<Self, StoreError> {
        let dir = Self::default_dir().ok_or_else(|| {
            StoreError::Refused(format!(
                "there is no home directory to keep favorites and settings in; set \
                 {CONFIG_DIR_ENV} to a directory"
            ))
        })?;
        Self::open(dir)
    }

    /// The store in `dir`, created (readable by the user only) if needed. Files that cannot be
    /// read are dealt with and listed in [`Store::problems`]; only I/O errors fail.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let _lock = DirLock::acquire(&dir)?;
        atomic::remove_leftovers(&dir);
        let state = State {
            favorites: Slot::open(&dir)?,
            recents: Slot::open(&dir)?,
            hosts: Slot::open(&dir)?,
            settings: Slot::open(&dir)?,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                dir,
                state: Mutex::new(state),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A number that changes whenever the store's contents do, through this process or (once
    /// reread) another: a cheap way for a view to tell whether to rebuild.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Files that could not be used since the store was opened (by concern, oldest first).
    pub fn problems(&self) -> Vec<StoreProblem> {
        let state = self.state();
        [
            &state.favorites.problems,
            &state.recents.problems,
            &state.hosts.problems,
            &state.settings.problems,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    /// Every favorite, in the order they were added.
    pub fn favorites(&self) -> Vec<Favorite> {
        self.state().favorites.doc.favorites.clone()
    }

    /// The favorites `query` names: the one whose alias it is (ignoring case), or those with
    /// that instance id (one per account).
    pub fn find_favorites(&self, query: &str) -> Vec<Favorite> {
        let state = self.state();
        let all = &state.favorites.doc.favorites;
        if let Some(by_alias) = all.iter().find(|f| {
            f.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(query.trim()))
        }) {
            return vec![by_alias.clone()];
        }
        all.iter()
            .filter(|f| f.answers_to(query))
            .cloned()
            .collect()
    }

    /// The favorite with this alias (ignoring case).
    pub fn favorite_by_alias(&self, alias: &str) -> Option<Favorite> {
        let alias = alias.trim();
        self.state()
            .favorites
            .doc
            .favorites
            .iter()
            .find(|f| {
                f.alias
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(alias))
            })
            .cloned()
    }

    /// Whether this account's instance is a favorite.
    pub fn is_favorite(&self, key: &AccountInstance) -> bool {
        self.state()
            .favorites
            .doc
            .favorites
            .iter()
            .any(|f| &f.key() == key)
    }

    /// Adds `favorite`, or replaces the favorite for the same account and instance; `true` when
    /// it replaced one. Refused when its alias is taken or not a valid alias.
    pub fn add_favorite(&self, favorite: Favorite) -> Result<bool, StoreError> {
        self.update(|s| &mut s.favorites, |file| file.upsert(favorite))
    }

    /// Removes the favorite for `key` and returns it; refused when there is none.
    pub fn remove_favorite(&self, key: &AccountInstance) -> Result<Favorite, StoreError> {
        self.update(
            |s| &mut s.favorites,
            |file| {
                let at = file
                    .favorites
                    .iter()
                    .position(|f| &f.key() == key)
                    .ok_or_else(|| format!("{key} is not a favorite"))?;
                Ok(file.favorites.remove(at))
            },
        )
    }

    /// The last connections made, newest first (at most [`RECENTS_KEPT`]).
    pub fn recents(&self) -> Vec<Recent> {
        self.state().recents.doc.recents.clone()
    }

    /// Remembers that `host` (Name tag `name`) was just connected to through `profile` (when
    /// known) with `action`. Called whenever a connection is made, from the GUI, the tray or
    /// the CLI.
    pub fn record_recent(
        &self,
        host: &HostKey,
        profile: Option<&str>,
        name: Option<&str>,
        action: Action,
        local_port: Option<u16>,
    ) -> Result<(), StoreError> {
        let recent = Recent {
            account_id: host.account_id.clone(),
            region: host.region.clone(),
            instance_id: host.instance_id.clone(),
            name: name.map(str::to_owned),
            profile: profile.map(str::to_owned),
            action,
            local_port,
            at: chrono::Utc::now(),
        };
        self.update(
            |s| &mut s.recents,
            |file| {
                file.record(recent);
                Ok(())
            },
        )
    }

    /// The user's settings for one host (all unset when there are none).
    pub fn host_settings(&self, key: &AccountInstance) -> HostSettings {
        self.state().hosts.doc.get(key).unwrap_or_default()
    }

    /// Every host with settings.
    pub fn all_host_settings(&self) -> Vec<(AccountInstance, HostSettings)> {
        self.state()
            .hosts
            .doc
            .hosts
            .iter()
            .map(|h| (h.key(), h.settings()))
            .collect()
    }

    /// Replaces one host's settings; empty settings forget the host.
    pub fn set_host_settings(
        &self,
        key: &AccountInstance,
        settings: HostSettings,
    ) -> Result<(), StoreError> {
        self.update(|s| &mut s.hosts, |file| file.set(key, settings))
    }

    /// The app settings.
    pub fn settings(&self) -> AppSettings {
        self.state().settings.doc.settings.clone()
    }

    /// Replaces the app settings; refused (with the setting named) when one is out of range.
    pub fn set_settings(&self, settings: AppSettings) -> Result<(), StoreError> {
        settings.check().map_err(StoreError::Refused)?;
        self.update(
            |s| &mut s.settings,
            |file| {
                file.settings = settings;
                Ok(())
            },
        )
    }

    /// Writes every favorite and host setting to `path` as TOML, to share or back up.
    pub fn export(&self, path: &Path) -> Result<(), StoreError> {
        let text = {
            let state = self.state();
            exchange::render(&state.favorites.doc, &state.hosts.doc)
        };
        atomic::write_atomically(path, text.as_bytes()).map_err(StoreError::io("write", path))
    }

    /// Adds the favorites and host settings in `path` (an [`Store::export`] file, or one written
    /// by hand) to the store: entries for the same account and instance are replaced, the rest
    /// kept. A favorite whose alias another favorite already has is skipped and listed in the
    /// report. Nothing is changed when the file cannot be read.
    pub fn import(&self, path: &Path) -> Result<ImportReport, StoreError> {
        let text = std::fs::read_to_string(path).map_err(StoreError::io("read", path))?;
        let incoming = exchange::parse(&text).map_err(|reason| StoreError::Import {
            path: path.to_owned(),
            reason,
        })?;
        let mut report = ImportReport::default();
        let favorites = incoming.favorites;
        let hosts = incoming.hosts;
        if !favorites.is_empty() {
            report = self.update(
                |s| &mut s.favorites,
                |file| Ok(exchange::merge_favorites(file, favorites)),
            )?;
        }
        if !hosts.is_empty() {
            report.hosts =
                self.update(|s| &mut s.hosts, |file| exchange::merge_hosts(file, hosts))?;
        }
        Ok(report)
    }

    /// Rereads the files another process changed since this one last read or wrote them;
    /// `true` when any did.
    pub fn reload_if_changed(&self) -> bool {
        let mut state = self.state();
        let state = &mut *state;
        let changed = state.favorites.changed_on_disk()
            || state.recents.changed_on_disk()
            || state.hosts.changed_on_disk()
            || state.settings.changed_on_disk();
        if !changed {
            return false;
        }
        let _lock = match DirLock::acquire(&self.shared.dir) {
            Ok(lock) => lock,
            Err(error) => {
                tracing::warn!("could not reread the store: {error}");
                return false;
            }
        };
        let results = [
            reload_changed(&mut state.favorites),
            reload_changed(&mut state.recents),
            reload_changed(&mut state.hosts),
            reload_changed(&mut state.settings),
        ];
        for error in results.into_iter().filter_map(Result::err) {
            tracing::warn!("could not reread the store: {error}");
        }
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Checks the files every `interval` on a thread of its own and calls `on_change` after
    /// rereading any that another process changed (a `favorites add` in a terminal shows in the
    /// window and the tray), or after this process changed the store through any clone. A poll of four `stat` calls, rather than an inotify/FSEvents
    /// watcher: it is as prompt at human timescales, portable, and cannot miss an atomic
    /// rename. Stops when the returned [`StoreWatch`] is dropped.
    pub fn watch(
        &self,
        interval: std::time::Duration,
        on_change: impl Fn() + Send + 'static,
    ) -> StoreWatch {
        StoreWatch::start(self.clone(), interval, on_change)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one change to one concern under the directory lock.
    fn update<D: document::Document, R>(
        &self,
        slot: impl FnOnce(&mut State) -> &mut Slot<D>,
        change: impl FnOnce(&mut D) -> Result<R, String>,
    ) -> Result<R, StoreError> {
        let mut state = self.state();
        let _lock = DirLock::acquire(&self.shared.dir)?;
        let result = slot(&mut state).update(change)?;
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        Ok(result)
    }
}

fn reload_changed<D: document::Document>(slot: &mut Slot<D>) -> Result<(), StoreError> {
    if slot.changed_on_disk() {
        slot.reload()
    } else {
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(StoreError::io("create the directory", dir))
}
