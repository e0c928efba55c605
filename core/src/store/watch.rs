//! Noticing changes other processes make to the store, by polling the files' metadata.

use std::sync::mpsc;
use std::time::Duration;

use super::Store;

/// A running watch ([`Store::watch`]); dropping it stops the thread.
pub struct StoreWatch {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreWatch {
    pub(super) fn start(
        store: Store,
        interval: Duration,
        on_change: impl Fn() + Send + 'static,
    ) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bastionless-store-watch".into())
            .spawn(move || {
                let mut seen = store.generation();
                // Sleeping on the channel rather than `thread::sleep` lets a drop stop it at once.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    store.reload_if_changed();
                    let now = store.generation();
                    if now != seen {
                        seen = now;
                        on_change();
                    }
                }
            });
        match thread {
            Ok(thread) => Self {
                stop: Some(stop),
                thread: Some(thread),
            },
            Err(error) => {
                tracing::warn!(
                    "could not start watching the store ({error}); changes made elsewhere show \
                     after a restart"
                );
                Self {
                    stop: None,
                    thread: None,
                }
            }
        }
    }
}

impl Drop for StoreWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
