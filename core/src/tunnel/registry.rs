//! The tunnel manager's shared state: every tunnel's record, the per-endpoint connection counts,
//! and the events not yet reported.
//!
//! Listener and connection tasks update it at the few moments that matter (a connection
//! accepted, opened, ended); bytes are counted by the pump in atomics and only read here when a
//! report is built. Every update wakes the publisher (see `publish`), which turns the state into
//! a [`TunnelReport`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::status::LinkHealth;
use super::throughput::Throughput;
use super::{
    LocalEnd, RouteInfo, TunnelEvent, TunnelEventKind, TunnelId, TunnelReport, TunnelSettings,
    TunnelState, TunnelStatus, TunnelTarget,
};

/// Asks a tunnel's route how its link to AWS is (see [`Registry::set_health`]).
pub(super) type HealthProbe = Box<dyn Fn() -> LinkHealth + Send + Sync>;
use crate::eic::TunnelCounters;

pub(super) struct Registry {
    state: Mutex<State>,
    /// Wakes the publisher; a permit is kept when it is busy, so no change is missed.
    pub(super) wake: Arc<Notify>,
    /// Set by local I/O, cleared by each report: bytes moved since the last report.
    activity: AtomicBool,
}

#[derive(Default)]
struct State {
    settings: TunnelSettings,
    next_tunnel: u64,
    tunnels: BTreeMap<TunnelId, Record>,
    next_event: u64,
    unreported: Vec<TunnelEvent>,
    /// Our open connections per endpoint (the slot key).
    slots: HashMap<String, usize>,
}

struct Record {
    target: TunnelTarget,
    route: Option<RouteInfo>,
    local: LocalEnd,
    phase: Phase,
    connections: BTreeMap<u64, Connection>,
    connections_total: u64,
    /// Bytes of connections that have ended.
    ended_to_remote: u64,
    ended_from_remote: u64,
    last_error: Option<String>,
    started: Instant,
    throughput: Throughput,
    task: Option<AbortHandle>,
    /// The route's link health (resuming, resumes, RTT), read with each report.
    health: Option<HealthProbe>,
}

enum Phase {
    /// The route is being worked out.
    Starting,
    /// Listening, or carrying a stdio connection.
    Running,
    /// Over: `Ok` for a stdio tunnel that ended normally, `Err` with the reason otherwise.
    Ended(Result<(), String>),
}

struct Connection {
    counters: Arc<TunnelCounters>,
    open: bool,
}

/// One of an endpoint's connection slots, given back when dropped.
pub(super) struct Slot {
    registry: Arc<Registry>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        if let Some(count) = state.slots.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.slots.remove(&self.key);
            }
        }
    }
}

impl Registry {
    pub(super) fn new(settings: TunnelSettings) -> Self {
        Self {
            state: Mutex::new(State {
                settings,
                next_tunnel: 1,
                next_event: 1,
                ..State::default()
            }),
            wake: Arc::new(Notify::new()),
            activity: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `change` on the state and wakes the publisher.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let result = change(&mut self.lock());
        self.wake.notify_one();
        result
    }

    /// Runs `change` on one tunnel's record, if it still exists, and wakes the publisher.
    fn change_record<T>(&self, id: TunnelId, change: impl FnOnce(&mut Record) -> T) -> Option<T> {
        self.change(|state| state.tunnels.get_mut(&id).map(change))
    }

    pub(super) fn settings(&self) -> TunnelSettings {
        self.lock().settings
    }

    pub(super) fn configure(&self, settings: TunnelSettings) {
        self.lock().settings = settings;
    }

    /// Local bytes moved: make sure the publisher is running.
    pub(super) fn mark_activity(&self) {
        if !self.activity.swap(true, Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    pub(super) fn reserve(&self, target: TunnelTarget) -> TunnelId {
        self.change(|state| {
            let id = TunnelId(state.next_tunnel);
            state.next_tunnel += 1;
            state.tunnels.insert(
                id,
                Record {
                    target,
                    route: None,
                    local: LocalEnd::Pending,
                    phase: Phase::Starting,
                    connections: BTreeMap::new(),
                    connections_total: 0,
                    ended_to_remote: 0,
                    ended_from_remote: 0,
                    last_error: None,
                    started: Instant::now(),
                    throughput: Throughput::default(),
                    task: None,
                    health: None,
                },
            );
            id
        })
    }

    /// Marks the tunnel running; false when it was closed meanwhile (the caller then stops).
    pub(super) fn set_running(&self, id: TunnelId, route: RouteInfo, local: LocalEnd) -> bool {
        self.change_record(id, |record| {
            record.route = Some(route);
            record.local = local;
            record.phase = Phase::Running;
        })
        .is_some()
    }

    /// Lets each report ask the tunnel's route about its link (a Session Manager resume, the
    /// RTT); the route calls [`Registry::link_changed`] when that changes.
    pub(super) fn set_health(&self, id: TunnelId, probe: HealthProbe) {
        self.change_record(id, |record| record.health = Some(probe));
    }

    /// A route's link changed (lost, resumed): report it even though no bytes move.
    pub(super) fn link_changed(&self) {
        self.wake.notify_one();
    }

    /// Gives the tunnel the task to abort when it is closed; false when it was closed already.
    pub(super) fn attach_task(&self, id: TunnelId, task: AbortHandle) -> bool {
        let mut state = self.lock();
        match state.tunnels.get_mut(&id) {
            Some(record) if !matches!(record.phase, Phase::Ended(_)) => {
                record.task = Some(task);
                true
            }
            // Already over: nothing left to abort.
            Some(_) => true,
            None => false,
        }
    }

    /// Ends the tunnel: `Err` marks it failed with the reason.
    pub(super) fn finish(&self, id: TunnelId, outcome: Result<(), String>) {
        self.change_record(id, |record| {
            if let Err(reason) = &outcome {
                record.last_error = Some(reason.clone());
            }
            record.phase = Phase::Ended(outcome);
            record.task = None;
        });
    }

    /// Forgets the tunnel and stops its task (which drops its listener and connections).
    pub(super) fn remove(&self, id: TunnelId) -> bool {
        let removed = self.change(|state| state.tunnels.remove(&id));
        match removed {
            Some(record) => {
                if let Some(task) = record.task {
                    task.abort();
                }
                true
            }
            None => false,
        }
    }

    /// Takes one of the endpoint's slots, or says how many are in use when none is free.
    pub(super) fn try_slot(self: &Arc<Self>, key: &str) -> Result<Slot, usize> {
        let mut state = self.lock();
        let cap = state.settings.max_connections_per_endpoint.get();
        let count = state.slots.entry(key.to_owned()).or_insert(0);
        if *count >= cap {
            return Err(*count);
        }
        *count += 1;
        Ok(Slot {
            registry: self.clone(),
            key: key.to_owned(),
        })
    }

    /// A new connection; `None` when the tunnel is gone.
    pub(super) fn connection_started(&self, id: TunnelId) -> Option<(u64, Arc<TunnelCounters>)> {
        self.change_record(id, |record| {
            record.connections_total += 1;
            let number = record.connections_total;
            let counters = Arc::new(TunnelCounters::new());
            record.connections.insert(
                number,
                Connection {
                    counters: counters.clone(),
                    open: false,
                },
            );
            (number, counters)
        })
    }

    pub(super) fn connection_opened(&self, id: TunnelId, connection: u64) {
        self.change_record(id, |record| {
            if let Some(c) = record.connections.get_mut(&connection) {
                c.open = true;
            }
        });
    }

    /// The connection is over; its bytes move to the tunnel's totals, its error to an event.
    pub(super) fn connection_ended(&self, id: TunnelId, connection: u64, error: Option<String>) {
        self.change(|state| {
            let Some(record) = state.tunnels.get_mut(&id) else {
                return;
            };
            if let Some(ended) = record.connections.remove(&connection) {
                record.ended_to_remote += ended.counters.bytes_to_remote();
                record.ended_from_remote += ended.counters.bytes_from_remote();
            }
            if let Some(error) = error {
                record.last_error = Some(error.clone());
                state.push_event(id, TunnelEventKind::ConnectionFailed { connection, error });
            }
        });
    }

    /// A local connection turned away before it got a connection number.
    pub(super) fn connection_refused(&self, id: TunnelId, reason: String) {
        self.change(|state| {
            let Some(record) = state.tunnels.get_mut(&id) else {
                return;
            };
            record.connections_total += 1;
            record.last_error = Some(reason.clone());
            state.push_event(id, TunnelEventKind::ConnectionRefused { reason });
        });
    }

    pub(super) fn event(&self, id: TunnelId, kind: TunnelEventKind) {
        self.change(|state| state.push_event(id, kind));
    }

    /// Every tunnel's status at `now`, leaving the events for the next report.
    pub(super) fn statuses(&self, now: Instant) -> Vec<TunnelStatus> {
        let mut state = self.lock();
        state
            .tunnels
            .iter_mut()
            .map(|(id, record)| record.status(*id, now))
            .collect()
    }

    /// Every tunnel's status at `now`, the events since the last report, and whether bytes are
    /// still moving (then the publisher reports again shortly).
    pub(super) fn report(&self, now: Instant) -> (TunnelReport, bool) {
        let mut moving = self.activity.swap(false, Ordering::Relaxed);
        let mut state = self.lock();
        let tunnels = state
            .tunnels
            .iter_mut()
            .map(|(id, record)| {
                let status = record.status(*id, now);
                moving |= status.rate_to_remote > 0 || status.rate_from_remote > 0;
                status
            })
            .collect();
        let events = std::mem::take(&mut state.unreported);
        (TunnelReport { tunnels, events }, moving)
    }
}

impl Drop for Registry {
    /// Lets the publisher see that there is nothing left to publish.
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

impl State {
    fn push_event(&mut self, tunnel: TunnelId, kind: TunnelEventKind) {
        let seq = self.next_event;
        self.next_event += 1;
        self.unreported.push(TunnelEvent {
            seq,
            tunnel,
            at: SystemTime::now(),
            kind,
        });
    }
}

impl Record {
    fn status(&mut self, id: TunnelId, now: Instant) -> TunnelStatus {
        let (mut to_remote, mut from_remote) = (self.ended_to_remote, self.ended_from_remote);
        for c in self.connections.values() {
            to_remote += c.counters.bytes_to_remote();
            from_remote += c.counters.bytes_from_remote();
        }
        let rates = self.throughput.record(now, to_remote, from_remote);
        let health = self
            .health
            .as_ref()
            .map(|probe| probe())
            .unwrap_or_default();
        let state = match &self.phase {
            Phase::Ended(Ok(())) => TunnelState::Closed,
            Phase::Ended(Err(reason)) => TunnelState::Failed {
                reason: reason.clone(),
            },
            _ if health.resuming => TunnelState::Resuming,
            _ if self.connections.values().any(|c| c.open) => TunnelState::Open,
            Phase::Starting => TunnelState::Connecting,
            Phase::Running if !self.connections.is_empty() => TunnelState::Connecting,
            Phase::Running => TunnelState::Listening,
        };
        TunnelStatus {
            id,
            target: self.target.clone(),
            route: self.route.clone(),
            local: self.local,
            state,
            bytes_to_remote: to_remote,
            bytes_from_remote: from_remote,
            rate_to_remote: rates.to_remote,
            rate_from_remote: rates.from_remote,
            open_connections: self.connections.len(),
            connections_total: self.connections_total,
            started: self.started,
            last_error: self.last_error.clone(),
            resumes: health.resumes,
            rtt: health.rtt,
        }
    }
}
