//! The tunnel manager: local ends (a loopback listener, or stdin/stdout) joined to instances
//! through a [`Route`], with each tunnel's state and byte counts published for the app.
//!
//! [`Tunnels`] runs on the engine's runtime. A tunnel is first *reserved* (it shows as
//! connecting while the engine works out the route), then started in one of two modes:
//!
//! - listener ([`Reservation::listen`]): 127.0.0.1 only, one tunnel connection per accepted TCP
//!   connection, each freshly signed; a failed connection never stops the listener;
//! - stdio ([`Reservation::stdio`]): one connection between this process's stdin/stdout and the
//!   instance, for `ssh -o ProxyCommand`; it returns when the connection ends.
//!
//! With [`Route::Ssm`], a listener's connections are streams of one Session Manager
//! port-forwarding session, started by the first connection and ended with the tunnel, and a
//! stdio tunnel is one `AWS-StartSSHSession`.
//!
//! Every connection through an EIC endpoint takes one of that endpoint's slots
//! ([`TunnelSettings::max_connections_per_endpoint`]); with none free, the connection is refused
//! with the reason, because AWS allows only 20 per endpoint for everyone together.
//!
//! Reports ([`TunnelReport`]) go to the function given to [`Tunnels::start`] whenever something
//! changes, and about four times a second while bytes flow; never while idle.
//!
//! One file per idea: `route` (how to reach the instance), `listener`, `connection` (one
//! connection's life), `registry` (shared state), `publish`, `throughput`, `credentials`
//! (fresh credentials per connection), `status` (what the app sees), `settings`, `error`.

mod connection;
mod credentials;
mod error;
mod listener;
mod publish;
mod registry;
mod route;
mod settings;
mod status;
mod throughput;

pub use error::TunnelError;
pub use route::{EicRoute, Route, SsmRoute};
pub use settings::{ConnectionCap, InvalidCap, TunnelSettings};
pub use status::{
    LocalEnd, RouteInfo, TunnelEvent, TunnelEventKind, TunnelId, TunnelState, TunnelStatus,
    TunnelTarget,
};

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::eic::CloseInfo;
use registry::Registry;

/// Every tunnel's status, and what happened since the previous report.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelReport {
    /// All tunnels, in the order they were asked for.
    pub tunnels: Vec<TunnelStatus>,
    /// Events since the previous report, oldest first.
    pub events: Vec<TunnelEvent>,
}

/// The tunnel manager. Cheap to clone; every clone manages the same tunnels.
#[derive(Clone)]
pub struct Tunnels {
    registry: Arc<Registry>,
}

impl Tunnels {
    /// Starts the manager's publisher on `runtime`; `on_report` receives every report.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        settings: TunnelSettings,
        on_report: impl Fn(TunnelReport) + Send + Sync + 'static,
    ) -> Self {
        let registry = Arc::new(Registry::new(settings));
        runtime.spawn(publish::run(
            Arc::downgrade(&registry),
            registry.wake.clone(),
            Box::new(on_report),
        ));
        Self { registry }
    }

    /// The settings new connections follow.
    pub fn settings(&self) -> TunnelSettings {
        self.registry.settings()
    }

    /// Changes the settings; they apply to connections opened from now on.
    pub fn configure(&self, settings: TunnelSettings) {
        self.registry.configure(settings);
    }

    /// Adds a tunnel to `target`, shown as connecting until it is started or fails. Dropping the
    /// reservation unused removes the tunnel again.
    pub fn reserve(&self, target: TunnelTarget) -> Reservation {
        Reservation {
            id: self.registry.reserve(target),
            registry: self.registry.clone(),
            used: false,
        }
    }

    /// Every tunnel's status now, with byte counts up to this moment (reports come at most
    /// about four times a second): a last look before the app exits.
    pub fn statuses_now(&self) -> Vec<TunnelStatus> {
        self.registry.statuses(std::time::Instant::now())
    }

    /// Closes a running tunnel (its listener and every connection), or dismisses a finished one.
    /// False when there is no such tunnel.
    pub fn close(&self, id: TunnelId) -> bool {
        self.registry.remove(id)
    }
}

/// A tunnel that has been asked for and not yet started.
pub struct Reservation {
    id: TunnelId,
    registry: Arc<Registry>,
    used: bool,
}

impl Reservation {
    /// The tunnel's id, as it appears in reports.
    pub fn id(&self) -> TunnelId {
        self.id
    }

    /// Starts listening on 127.0.0.1:`local_port` (any free port when `None`) and returns the
    /// bound address. Connections are served on the current runtime until the tunnel is closed.
    pub async fn listen(
        mut self,
        route: Route,
        local_port: Option<u16>,
    ) -> Result<SocketAddr, TunnelError> {
        let bound = listener::bind(local_port.unwrap_or(0)).await;
        self.used = true;
        let (listener, addr) = match bound {
            Ok(bound) => bound,
            Err(error) => {
                self.registry.finish(self.id, Err(error.to_string()));
                return Err(error);
            }
        };
        if !self
            .registry
            .set_running(self.id, route.info(), LocalEnd::Listener(addr))
        {
            return Err(TunnelError::Closed);
        }
        let route = Arc::new(route);
        route.on_link_change({
            let registry = self.registry.clone();
            Arc::new(move || registry.link_changed())
        });
        // A weak reference: a finished tunnel stays listed until dismissed, and must not keep
        // its route (and so its Session Manager session) alive meanwhile.
        let weak = Arc::downgrade(&route);
        self.registry.set_health(
            self.id,
            Box::new(move || weak.upgrade().map(|r| r.health()).unwrap_or_default()),
        );
        let task = tokio::spawn(listener::serve(
            self.registry.clone(),
            self.id,
            listener,
            route,
        ));
        if !self.registry.attach_task(self.id, task.abort_handle()) {
            task.abort();
            return Err(TunnelError::Closed);
        }
        tracing::debug!(id = %self.id, %addr, "tunnel listening");
        Ok(addr)
    }

    /// Carries one connection between `local` (stdin and stdout joined, for a ProxyCommand) and
    /// the instance, and returns when it ends. EOF on `local` sends a Close and lets the
    /// instance's last bytes arrive before returning.
    pub async fn stdio<L>(mut self, route: Route, local: L) -> Result<CloseInfo, TunnelError>
    where
        L: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.used = true;
        let (id, registry) = (self.id, self.registry.clone());
        let slot = match route
            .slot_key()
            .map(|key| registry.try_slot(key))
            .transpose()
        {
            Ok(slot) => slot,
            Err(open) => {
                let error = TunnelError::EndpointBusy {
                    endpoint_id: route.slot_key().unwrap_or_default().to_owned(),
                    open,
                };
                registry.finish(id, Err(error.to_string()));
                return Err(error);
            }
        };
        if !registry.set_running(id, route.info(), LocalEnd::Stdio) {
            return Err(TunnelError::Closed);
        }
        // Spawned, so that closing the tunnel can abort it, and so that it finishes (and is
        // recorded) even if the caller stops waiting.
        let task = tokio::spawn({
            let registry = registry.clone();
            async move {
                let result = connection::run(registry.clone(), id, &route, local, slot, true).await;
                registry.finish(id, result.as_ref().map(|_| ()).map_err(ToString::to_string));
                result
            }
        });
        if !registry.attach_task(id, task.abort_handle()) {
            task.abort();
        }
        task.await.unwrap_or(Err(TunnelError::Closed))
    }

    /// Marks the tunnel failed before it started (no route, say), keeping it listed with the
    /// reason until it is dismissed.
    pub fn fail(mut self, reason: String) {
        self.used = true;
        self.registry.finish(self.id, Err(reason));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            self.registry.remove(self.id);
        }
    }
}
