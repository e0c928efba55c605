//! `core::tunnel` against the local TLS WebSocket endpoint of `server.rs`: listeners on
//! 127.0.0.1 with real TCP clients, the per-endpoint cap, stdio mode, stats and reports. The
//! route is built exactly as the engine builds it, only pointing at the local endpoint.
//!
//! Tests live in `mod tunnel` so that `cargo test -p bastionless-core tunnel` selects them.

mod tunnel {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use bastionless_core::eic::*;
    use bastionless_core::inventory::HostKey;
    use bastionless_core::tunnel::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::{mpsc, watch};

    use crate::server::{Script, TestPki, TestServer};

    /// Upper bound for any single wait; a hang fails the test instead of blocking CI.
    const STEP: Duration = Duration::from_secs(20);

    const ENDPOINT_ID: &str = "eice-0123456789abcdef0";

    /// A tunnel manager whose reports are collected for the test to wait on.
    struct Harness {
        tunnels: Tunnels,
        statuses: watch::Receiver<Vec<TunnelStatus>>,
        events: Arc<Mutex<Vec<TunnelEvent>>>,
        reports: Arc<Mutex<usize>>,
        /// The highest upload rate any report showed.
        peak_rate: Arc<AtomicU64>,
        pki: TestPki,
    }

    impl Harness {
        fn new(settings: TunnelSettings) -> Self {
            let (publish, statuses) = watch::channel(Vec::new());
            let events = Arc::new(Mutex::new(Vec::new()));
            let reports = Arc::new(Mutex::new(0));
            let peak_rate = Arc::new(AtomicU64::new(0));
            let tunnels = Tunnels::start(&tokio::runtime::Handle::current(), settings, {
                let (events, reports, peak_rate) =
                    (events.clone(), reports.clone(), peak_rate.clone());
                move |report: TunnelReport| {
                    *reports.lock().unwrap() += 1;
                    for status in &report.tunnels {
                        peak_rate.fetch_max(status.rate_to_remote, Ordering::Relaxed);
                    }
                    events.lock().unwrap().extend(report.events);
                    publish.send_replace(report.tunnels);
                }
            });
            Self {
                tunnels,
                statuses,
                events,
                reports,
                peak_rate,
                pki: TestPki::new(),
            }
        }

        async fn server(
            &self,
            script_for: impl Fn(usize) -> Script + Send + 'static,
        ) -> TestServer {
            TestServer::start_with(Some(self.pki.server_config.clone()), script_for).await
        }

        fn route(&self, server: &TestServer, max_tunnel_duration: Option<u64>) -> Route {
            let connector = Connector::new(ConnectOptions {
                ca_bundles: vec![self.pki.ca_file.path().to_owned()],
                ..ConnectOptions::default()
            })
            .unwrap();
            let request = TunnelRequest {
                endpoint: EndpointAddress::parse(&server.addr.to_string()).unwrap(),
                endpoint_id: ENDPOINT_ID.into(),
                private_ip: "10.1.2.3".parse().unwrap(),
                remote_port: 22,
                max_tunnel_duration: max_tunnel_duration
                    .map(|s| MaxTunnelDuration::from_secs(s).unwrap()),
                region: "eu-west-1".into(),
            };
            let credentials = SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                Some("session/token".into()),
                Some(SystemTime::now() + Duration::from_secs(3600)),
                "test",
            ));
            Route::eic("test-profile", request, connector, credentials)
        }

        async fn listen(&self, route: Route) -> (TunnelId, SocketAddr) {
            let reservation = self.tunnels.reserve(target());
            let id = reservation.id();
            let addr = reservation.listen(route, None).await.unwrap();
            (id, addr)
        }

        /// Waits until the status of `id` satisfies `done`, and returns it.
        async fn wait_for(
            &self,
            id: TunnelId,
            done: impl Fn(&TunnelStatus) -> bool,
        ) -> TunnelStatus {
            let mut statuses = self.statuses.clone();
            let found = tokio::time::timeout(
                STEP,
                statuses.wait_for(|all| all.iter().any(|s| s.id == id && done(s))),
            )
            .await;
            let latest = self.statuses.borrow().clone();
            assert!(found.is_ok(), "timed out; last statuses: {latest:#?}");
            latest.into_iter().find(|s| s.id == id).unwrap()
        }

        /// Waits for an event matching `wanted`.
        async fn event(&self, wanted: impl Fn(&TunnelEvent) -> bool) -> TunnelEvent {
            let deadline = tokio::time::Instant::now() + STEP;
            loop {
                if let Some(e) = self.events.lock().unwrap().iter().find(|e| wanted(e)) {
                    return e.clone();
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no such event; events: {:#?}",
                    self.events.lock().unwrap()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        fn report_count(&self) -> usize {
            *self.reports.lock().unwrap()
        }
    }

    fn target() -> TunnelTarget {
        TunnelTarget {
            host: HostKey {
                account_id: "111122223333".into(),
                region: "eu-west-1".into(),
                instance_id: "i-0123456789abcdef0".into(),
            },
            host_name: "web-eic-1".into(),
            remote_port: 22,
        }
    }

    fn echo() -> (Script, mpsc::UnboundedReceiver<Option<u16>>) {
        let (closes, seen) = mpsc::unbounded_channel();
        (Script::Echo { closes }, seen)
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        rand::fill(&mut data[..]);
        data
    }

    /// Connects to `addr`, sends `data`, reads the same number of bytes back.
    async fn connect_and_echo(addr: SocketAddr, data: &[u8]) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut back = vec![0u8; data.len()];
        let (mut r, mut w) = tcp.split();
        let (written, read) = tokio::time::timeout(STEP, async {
            tokio::join!(w.write_all(data), r.read_exact(&mut back))
        })
        .await
        .expect("echo hung");
        written.unwrap();
        read.unwrap();
        assert!(back == data, "the echo came back different");
        tcp
    }

    /// Ends a client connection cleanly: EOF our side, then expect EOF from the tunnel.
    async fn hang_up(mut tcp: TcpStream) {
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(STEP, tcp.read_to_end(&mut rest))
            .await
            .expect("the tunnel did not close")
            .unwrap();
        assert!(rest.is_empty());
    }

    /// True when the tunnel closed `tcp` without sending anything.
    async fn closed_by_tunnel(tcp: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(STEP, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => false,
            Err(_) => panic!("the connection was neither served nor closed"),
        }
    }

    #[tokio::test]
    async fn each_local_connection_gets_its_own_websocket_and_its_bytes_back_intact() {
        let h = Harness::new(TunnelSettings::default());
        let (script, mut closes) = echo();
        let server = h.server(move |_| script.clone()).await;
        let (id, addr) = h.listen(h.route(&server, None)).await;
        assert_eq!(
            addr.ip(),
            Ipv4Addr::LOCALHOST,
            "listeners bind 127.0.0.1 only"
        );
        h.wait_for(id, |s| s.state == TunnelState::Listening).await;

        const CLIENTS: usize = 5;
        const SIZE: usize = 256 * 1024;
        let clients = (0..CLIENTS).map(|_| {
            let data = random_bytes(SIZE);
            async move { hang_up(connect_and_echo(addr, &data).await).await }
        });
        futures_util::future::join_all(clients).await;

        assert_eq!(
            server.requests().len(),
            CLIENTS,
            "one upgrade per connection"
        );
        for _ in 0..CLIENTS {
            assert_eq!(closes.recv().await, Some(Some(1000)));
        }
        let status = h
            .wait_for(id, |s| {
                s.open_connections == 0 && s.connections_total == CLIENTS as u64
            })
            .await;
        assert_eq!(status.state, TunnelState::Listening);
        assert_eq!(status.bytes_to_remote, (CLIENTS * SIZE) as u64);
        assert_eq!(status.bytes_from_remote, (CLIENTS * SIZE) as u64);
        assert_eq!(status.local_addr(), Some(addr));
        assert_eq!(
            status.route,
            Some(RouteInfo::Eic {
                profile: "test-profile".into(),
                endpoint_id: ENDPOINT_ID.into()
            })
        );
        assert_eq!(status.last_error, None);
    }

    #[tokio::test]
    async fn a_refused_upgrade_fails_only_its_connection_and_the_listener_serves_the_next() {
        let h = Harness::new(TunnelSettings::default());
        let (echo, _closes) = echo();
        let server = h
            .server(move |n| match n {
                0 => Script::Reject {
                    status: 403,
                    body: r#"{"ErrorCode":"AccessDenied","Message":"not authorized to perform ec2-instance-connect:OpenTunnel"}"#,
                    request_id: "req-403",
                },
                _ => echo.clone(),
            })
            .await;
        let (id, addr) = h.listen(h.route(&server, None)).await;

        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_tunnel(&mut refused).await);
        let event = h
            .event(|e| matches!(e.kind, TunnelEventKind::ConnectionFailed { .. }))
            .await;
        assert_eq!(event.tunnel, id);
        assert!(event.kind.is_error());
        let shown = event.to_string();
        assert!(shown.contains("HTTP 403 AccessDenied"), "{shown}");
        assert!(!shown.contains("X-Amz-Signature"), "{shown}");

        hang_up(connect_and_echo(addr, b"still serving").await).await;
        let status = h
            .wait_for(id, |s| s.connections_total == 2 && s.open_connections == 0)
            .await;
        assert_eq!(status.state, TunnelState::Listening);
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("HTTP 403")),
            "{status:?}"
        );
        assert_eq!(status.bytes_from_remote, b"still serving".len() as u64);
    }

    #[tokio::test]
    async fn the_connection_cap_counts_every_tunnel_through_the_endpoint() {
        let settings = TunnelSettings {
            max_connections_per_endpoint: ConnectionCap::new(2).unwrap(),
            ..TunnelSettings::default()
        };
        let h = Harness::new(settings);
        let (script, _closes) = echo();
        let server = h.server(move |_| script.clone()).await;
        let (first, first_addr) = h.listen(h.route(&server, None)).await;
        let (second, second_addr) = h.listen(h.route(&server, None)).await;

        let a = connect_and_echo(first_addr, b"one").await;
        let b = connect_and_echo(second_addr, b"two").await;
        let mut third = TcpStream::connect(first_addr).await.unwrap();
        assert!(
            closed_by_tunnel(&mut third).await,
            "the third connection must be refused"
        );
        let event = h
            .event(|e| matches!(e.kind, TunnelEventKind::ConnectionRefused { .. }))
            .await;
        assert_eq!(event.tunnel, first);
        assert!(
            event.to_string().contains(&format!(
                "2 connections through {ENDPOINT_ID} are already open"
            )),
            "{event}"
        );
        assert_eq!(
            server.requests().len(),
            2,
            "a refused connection opens no WebSocket"
        );

        hang_up(a).await;
        h.wait_for(first, |s| s.open_connections == 0).await;
        hang_up(connect_and_echo(first_addr, b"room again").await).await;
        hang_up(b).await;
        h.wait_for(second, |s| s.open_connections == 0).await;
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn rates_show_while_bytes_flow_and_an_idle_tunnel_stops_reporting() {
        let h = Harness::new(TunnelSettings::default());
        let (script, _closes) = echo();
        let server = h.server(move |_| script.clone()).await;
        let (id, addr) = h.listen(h.route(&server, None)).await;

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let chunk = random_bytes(32 * 1024);
        let mut back = vec![0u8; chunk.len()];
        // About 1.2 s of steady traffic, so that several reports fall inside it.
        for _ in 0..24 {
            tcp.write_all(&chunk).await.unwrap();
            tcp.read_exact(&mut back).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 32 KiB every ~50 ms is several hundred KiB/s; allow for a slow machine.
        let peak = h.peak_rate.load(Ordering::Relaxed);
        assert!(
            peak > 64 * 1024,
            "reports during the transfer showed a rate: {peak} B/s"
        );

        let idle = h
            .wait_for(id, |s| s.rate_to_remote == 0 && s.rate_from_remote == 0)
            .await;
        assert_eq!(idle.bytes_to_remote, 24 * 32 * 1024);
        assert_eq!(idle.bytes_from_remote, 24 * 32 * 1024);
        assert_eq!(idle.open_connections, 1);
        assert_eq!(idle.state, TunnelState::Open);

        let before = h.report_count();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            h.report_count(),
            before,
            "nothing changed, so nothing was reported"
        );
        hang_up(tcp).await;
        assert!(h.report_count() > before, "the hang-up was reported");
    }

    #[tokio::test]
    async fn stdio_mode_carries_one_connection_and_ends_after_local_eof() {
        let h = Harness::new(TunnelSettings::default());
        let (script, mut closes) = echo();
        let server = h.server(move |_| script.clone()).await;
        let reservation = h.tunnels.reserve(target());
        let id = reservation.id();

        let (app, local) = tokio::io::duplex(64 * 1024);
        let (mut app_r, mut app_w) = tokio::io::split(app);
        let data = random_bytes(300 * 1024);
        let app_side = async {
            app_w.write_all(&data).await.unwrap();
            app_w.shutdown().await.unwrap();
            let mut back = Vec::new();
            app_r.read_to_end(&mut back).await.unwrap();
            back
        };
        let (ended, back) = tokio::time::timeout(STEP, async {
            tokio::join!(reservation.stdio(h.route(&server, None), local), app_side)
        })
        .await
        .expect("stdio hung");
        assert_eq!(ended.unwrap().ended_by, TunnelEnd::LocalEof);
        assert!(back == data, "the echo came back different");
        assert_eq!(closes.recv().await, Some(Some(1000)));

        let status = h.wait_for(id, |s| s.state == TunnelState::Closed).await;
        assert_eq!(status.local, LocalEnd::Stdio);
        assert_eq!(status.bytes_to_remote, data.len() as u64);
        assert!(h.tunnels.close(id), "a finished tunnel is dismissed");
        h.statuses
            .clone()
            .wait_for(|all| all.iter().all(|s| s.id != id))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_warning_comes_before_the_endpoint_s_time_limit() {
        let h = Harness::new(TunnelSettings::default());
        let (script, _closes) = echo();
        let server = h.server(move |_| script.clone()).await;
        let (id, addr) = h.listen(h.route(&server, Some(2))).await;

        let started = tokio::time::Instant::now();
        let tcp = connect_and_echo(addr, b"hello").await;
        let warning = h
            .event(|e| matches!(e.kind, TunnelEventKind::EndingSoon { .. }))
            .await;
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(warning.tunnel, id);
        assert!(!warning.kind.is_error());
        assert_eq!(
            warning.kind,
            TunnelEventKind::EndingSoon {
                connection: 1,
                remaining: Duration::from_secs(1)
            }
        );
        assert!(
            server.requests()[0]
                .path_and_query
                .contains("&maxTunnelDuration=2&")
        );
        hang_up(tcp).await;
    }

    #[tokio::test]
    async fn a_busy_port_fails_the_tunnel_with_the_reason_and_closing_stops_a_listener() {
        let h = Harness::new(TunnelSettings::default());
        let (script, _closes) = echo();
        let server = h.server(move |_| script.clone()).await;
        let (id, addr) = h.listen(h.route(&server, None)).await;

        let reservation = h.tunnels.reserve(target());
        let busy = reservation.id();
        let error = reservation
            .listen(h.route(&server, None), Some(addr.port()))
            .await
            .unwrap_err();
        assert!(matches!(error, TunnelError::Bind { .. }), "{error}");
        let status = h
            .wait_for(busy, |s| matches!(s.state, TunnelState::Failed { .. }))
            .await;
        let TunnelState::Failed { reason } = status.state else {
            unreachable!()
        };
        assert!(
            reason.contains(&format!("127.0.0.1:{}", addr.port())),
            "{reason}"
        );

        let mut open = connect_and_echo(addr, b"open").await;
        assert!(h.tunnels.close(id));
        assert!(
            closed_by_tunnel(&mut open).await,
            "closing ends live connections"
        );
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "closing stops the listener"
        );
        assert!(!h.tunnels.close(id), "already gone");
    }

    #[tokio::test]
    async fn a_reservation_shows_as_connecting_then_failed_or_gone() {
        let h = Harness::new(TunnelSettings::default());
        let failing = h.tunnels.reserve(target());
        let failed = failing.id();
        let abandoned = h.tunnels.reserve(target());
        let gone = abandoned.id();
        h.wait_for(gone, |s| {
            s.state == TunnelState::Connecting && s.local == LocalEnd::Pending
        })
        .await;

        failing.fail("no EC2 Instance Connect Endpoint in vpc-0abc".into());
        let status = h
            .wait_for(failed, |s| matches!(s.state, TunnelState::Failed { .. }))
            .await;
        assert!(status.is_finished());
        drop(abandoned);
        h.statuses
            .clone()
            .wait_for(|all| all.iter().all(|s| s.id != gone))
            .await
            .unwrap();
    }
}
