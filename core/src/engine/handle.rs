//! A view of a running engine for another thread (the tray): it sends commands and follows the
//! snapshots without owning the engine, which stays with the window.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{Command, Engine, Snapshot};

/// Sends [`Command`]s to an engine and follows its snapshots. Cheap to clone; once the engine
/// is dropped, commands are ignored and [`EngineHandle::changed`] returns `None`.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl Engine {
    /// A handle for another thread.
    pub fn handle(&self) -> EngineHandle {
        EngineHandle {
            commands: self.commands.clone(),
            snapshots: self.snapshots.clone(),
        }
    }
}

impl EngineHandle {
    /// Queues a command; never blocks.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Waits until the engine publishes a snapshot this handle has not seen and returns it;
    /// `None` once the engine has stopped.
    pub async fn changed(&mut self) -> Option<Arc<Snapshot>> {
        self.snapshots.changed().await.ok()?;
        Some(self.snapshots.borrow_and_update().clone())
    }
}
