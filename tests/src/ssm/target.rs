//! What the agent connects to, and the pumps that move bytes to and from it.
//!
//! The agent runs *on* its instance: `localhost` (or no host) is the instance itself, whose
//! port answers with the scenario's backend (`sshd`, `echo`, `tcp:…`). With
//! `AWS-StartPortForwardingSessionToRemoteHost` the host may also be another running instance
//! of the same VPC, by private IP or EC2 host name (`ip-10-10-1-21.ec2.internal`), if the
//! security groups let the connection out of this instance and into that one. Anything else
//! cannot be reached, like a name that does not resolve or a port with nothing listening.
//!
//! A [`Connection`] is one open destination: a task reads it into the agent's backend-event
//! queue (the agent stops taking events when the client is behind, which stops the reading),
//! and a task writes what the client sent, counting the bytes still queued so the agent can
//! refuse more (spec §5.4, ErrHandlerNotReady) instead of buffering without bound.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::listener::BoxedIo;
use crate::scenario::{Backend, Instance, InstanceState, Peer, Scenario, SecurityGroup};
use crate::world::World;

/// One destination connection of a session, numbered by the agent.
pub type ConnId = u64;

/// What a destination did.
#[derive(Debug)]
pub enum BackendEvent {
    Data(ConnId, Vec<u8>),
    /// End of stream or an error: the destination is gone.
    Closed(ConnId),
}

/// The outcome of dialling for connection `conn`.
pub struct Dialed {
    pub conn: ConnId,
    pub result: Result<BoxedIo, String>,
}

/// Resolves `host:port` as seen from `instance` to the instance that answers and its backend.
pub fn resolve(
    scenario: &Scenario,
    instance: &Instance,
    host: Option<&str>,
    port: u16,
) -> Result<(String, Backend), String> {
    let target = match host.map(str::trim) {
        None | Some("localhost" | "127.0.0.1" | "::1") => instance,
        Some(name) => {
            let ip =
                host_ip(name).ok_or_else(|| format!("dial tcp: lookup {name}: no such host"))?;
            remote_instance(scenario, instance, ip, port)?
        }
    };
    let backend = target.backends.get(port).ok_or_else(|| {
        format!(
            "dial tcp {}:{port}: connect: connection refused",
            target.private_ip
        )
    })?;
    Ok((target.instance_id.clone(), backend))
}

/// An IPv4 address, or an EC2 private host name such as `ip-10-10-1-21.ec2.internal` or
/// `ip-10-10-1-21.eu-west-1.compute.internal`.
fn host_ip(name: &str) -> Option<Ipv4Addr> {
    if let Ok(ip) = name.parse() {
        return Some(ip);
    }
    let (label, domain) = name.split_once('.')?;
    if domain != "ec2.internal" && !domain.ends_with(".compute.internal") {
        return None;
    }
    label.strip_prefix("ip-")?.replace('-', ".").parse().ok()
}

/// Another instance of `from`'s VPC at `ip`, reachable on `port` through both instances'
/// security groups.
fn remote_instance<'s>(
    scenario: &'s Scenario,
    from: &Instance,
    ip: Ipv4Addr,
    port: u16,
) -> Result<&'s Instance, String> {
    let timeout = || format!("dial tcp {ip}:{port}: i/o timeout");
    let vpc = scenario
        .placement(from)
        .map(|placement| placement.vpc.id.clone())
        .ok_or_else(timeout)?;
    let target = scenario
        .instances
        .iter()
        .find(|candidate| {
            candidate.private_ip == ip
                && scenario
                    .placement(candidate)
                    .is_some_and(|placement| placement.vpc.id == vpc)
        })
        .ok_or_else(timeout)?;
    if target.state != InstanceState::Running {
        return Err(timeout());
    }
    if target.instance_id == from.instance_id {
        return Ok(target);
    }
    let outbound = groups(scenario, &from.security_groups).any(|group| {
        group.egress.iter().any(|rule| {
            rule.admits_tcp(
                port,
                Peer {
                    ip,
                    groups: &target.security_groups,
                },
            )
        })
    });
    let inbound = groups(scenario, &target.security_groups).any(|group| {
        group.ingress.iter().any(|rule| {
            rule.admits_tcp(
                port,
                Peer {
                    ip: from.private_ip,
                    groups: &from.security_groups,
                },
            )
        })
    });
    if outbound && inbound {
        Ok(target)
    } else {
        Err(timeout())
    }
}

/// The security groups named by `ids`.
fn groups<'s>(
    scenario: &'s Scenario,
    ids: &'s [String],
) -> impl Iterator<Item = &'s SecurityGroup> + 's {
    ids.iter().filter_map(|id| scenario.security_group(id))
}

/// Dials `host:port` from `instance_id` in a task of its own and reports on `results`.
pub fn dial(
    world: Arc<World>,
    conn: ConnId,
    instance_id: String,
    host: Option<String>,
    port: u16,
    results: mpsc::UnboundedSender<Dialed>,
) {
    tokio::spawn(async move {
        let resolved = world
            .scenario
            .instance(&instance_id)
            .ok_or_else(|| format!("instance {instance_id} is gone"))
            .and_then(|instance| resolve(&world.scenario, instance, host.as_deref(), port));
        let result = match resolved {
            Ok((target, backend)) => world
                .dial_backend(&target, backend)
                .await
                .map_err(|error| format!("dial {backend} on {target} port {port}: {error}")),
            Err(reason) => Err(reason),
        };
        let _ = results.send(Dialed { conn, result });
    });
}

/// An open destination. Dropping it closes the connection once what was written is flushed.
#[derive(Debug)]
pub struct Connection {
    to_destination: mpsc::UnboundedSender<Vec<u8>>,
    reader: AbortHandle,
}

impl Connection {
    /// Starts the pumps of `io`: reads of up to `read_chunk` bytes become
    /// [`BackendEvent::Data`] for `conn`; writes decrement `queued` once done.
    pub fn start(
        io: BoxedIo,
        conn: ConnId,
        read_chunk: usize,
        events: mpsc::Sender<BackendEvent>,
        queued: Arc<AtomicUsize>,
    ) -> Connection {
        let (mut read_half, mut write_half) = tokio::io::split(io);
        let reader = tokio::spawn(async move {
            let mut buffer = vec![0; read_chunk];
            loop {
                match read_half.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if events
                            .send(BackendEvent::Data(conn, buffer[..n].to_vec()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = events.send(BackendEvent::Closed(conn)).await;
        })
        .abort_handle();
        let (to_destination, mut from_agent) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            let mut broken = false;
            while let Some(data) = from_agent.recv().await {
                if !broken {
                    // Flushing makes a file-backed destination (the shell's terminal) write now.
                    broken = write_half.write_all(&data).await.is_err()
                        || write_half.flush().await.is_err();
                }
                queued.fetch_sub(data.len(), Ordering::Relaxed);
            }
            let _ = write_half.shutdown().await;
        });
        Connection {
            to_destination,
            reader,
        }
    }

    /// Queues `data` for the destination; the caller has already counted it in `queued`.
    pub fn write(&self, data: Vec<u8>) {
        let _ = self.to_destination.send(data);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_instance<'s>(scenario: &'s Scenario, name: &str) -> &'s Instance {
        scenario.instance_named(name).expect("in the demo")
    }

    #[test]
    fn the_instance_itself_answers_on_its_backends() {
        let demo = Scenario::demo();
        let win = demo_instance(&demo, "win-ssm-1");
        assert_eq!(
            resolve(&demo, win, None, 3389),
            Ok((win.instance_id.clone(), Backend::Echo))
        );
        assert_eq!(
            resolve(&demo, win, Some("localhost"), 3389).map(|(_, b)| b),
            Ok(Backend::Echo)
        );
        let refused = resolve(&demo, win, None, 22).expect_err("nothing on 22");
        assert!(refused.ends_with("connection refused"), "{refused}");
    }

    #[test]
    fn other_instances_are_reached_by_ip_or_host_name_through_security_groups() {
        let demo = Scenario::demo();
        let web = demo_instance(&demo, "web-eic-1");
        let db = demo_instance(&demo, "db-both-1");
        let api = demo_instance(&demo, "api-1");
        let dns = format!(
            "ip-{}.ec2.internal",
            api.private_ip.to_string().replace('.', "-")
        );
        // api-prod admits 8080 from the web tier: the connection gets through the groups
        // and finds nothing listening on api-1.
        for host in [api.private_ip.to_string(), dns.clone()] {
            let refused = resolve(&demo, web, Some(&host), 8080).expect_err("no backend");
            assert!(refused.ends_with("connection refused"), "{refused}");
        }
        // Not from the database tier, and web-prod admits SSH from the endpoint only.
        for (from, to, port) in [(db, api, 8080), (db, web, 22)] {
            let dropped =
                resolve(&demo, from, Some(&to.private_ip.to_string()), port).expect_err("filtered");
            assert!(dropped.ends_with("i/o timeout"), "{dropped}");
        }
        // The instance's own address is the instance.
        assert_eq!(
            resolve(&demo, web, Some(&web.private_ip.to_string()), 22),
            Ok((web.instance_id.clone(), Backend::Sshd))
        );
        let unknown = resolve(&demo, db, Some("nowhere.example"), 22).expect_err("no DNS");
        assert!(unknown.contains("no such host"), "{unknown}");
        let nobody = resolve(&demo, db, Some("10.99.99.99"), 22).expect_err("nobody there");
        assert!(nobody.ends_with("i/o timeout"), "{nobody}");
    }

    #[test]
    fn host_names_follow_the_ec2_private_dns_form() {
        assert_eq!(host_ip("10.1.2.3"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(
            host_ip("ip-10-1-2-3.eu-west-1.compute.internal"),
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert_eq!(host_ip("ip-10-1-2-3.example.com"), None);
    }
}
