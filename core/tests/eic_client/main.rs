//! `core::eic` against real sockets on 127.0.0.1: a TLS WebSocket server with a throwaway CA,
//! a CONNECT proxy, and the pump moving real bytes. Everything listens on loopback only, and
//! every wait is bounded.
//!
//! Tests live in `mod eic` so that `cargo test -p bastionless-core eic` selects them; the tunnel
//! manager's tests, over the same server, are in `tunnels.rs` (`mod tunnel`).

mod proxy;
mod server;
mod tunnels;

mod eic {
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use aws_credential_types::Credentials;
    use bastionless_core::eic::*;
    use sha2::{Digest, Sha256};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    use super::proxy::{ProxyMode, TestProxy};
    use super::server::{Script, TestPki, TestServer};

    /// Upper bound for any single test step; a hang fails the test instead of blocking CI.
    const STEP: Duration = Duration::from_secs(20);

    fn credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session/token+x=y".into()),
            None,
            "test",
        )
    }

    fn request_to(endpoint: &str) -> TunnelRequest {
        TunnelRequest {
            endpoint: EndpointAddress::parse(endpoint).unwrap(),
            endpoint_id: "eice-0123456789abcdef0".into(),
            private_ip: "10.1.2.3".parse().unwrap(),
            remote_port: 22,
            max_tunnel_duration: Some(MaxTunnelDuration::from_secs(600).unwrap()),
            region: "eu-west-1".into(),
        }
    }

    fn connector(ca_bundles: Vec<std::path::PathBuf>, proxy: ProxySettings) -> Connector {
        Connector::new(ConnectOptions {
            proxy,
            ca_bundles,
            ..Default::default()
        })
        .unwrap()
    }

    async fn open(connector: &Connector, endpoint: &str) -> Result<TunnelWebSocket, EicError> {
        tokio::time::timeout(
            STEP,
            connector.open_tunnel(&request_to(endpoint), &credentials(), SystemTime::now()),
        )
        .await
        .expect("open_tunnel hung")
    }

    /// Pumps `data` through `ws` (to an echo server): writes it, reads the same number of bytes
    /// back, then closes the local side. Returns the pump's result and what came back.
    async fn echo_through(
        ws: TunnelWebSocket,
        data: &[u8],
        counters: &TunnelCounters,
    ) -> (Result<CloseInfo, EicError>, Vec<u8>) {
        let (app, local) = tokio::io::duplex(256 * 1024);
        let (mut app_r, mut app_w) = tokio::io::split(app);
        let app_side = async {
            let mut back = vec![0u8; data.len()];
            let (written, read) = tokio::join!(app_w.write_all(data), app_r.read_exact(&mut back));
            written.unwrap();
            read.unwrap();
            app_w.shutdown().await.unwrap();
            let mut extra = Vec::new();
            app_r.read_to_end(&mut extra).await.unwrap();
            assert!(
                extra.is_empty(),
                "{} unexpected bytes after the echo",
                extra.len()
            );
            back
        };
        let (result, back) = tokio::time::timeout(STEP, async {
            tokio::join!(pump(local, ws, counters), app_side)
        })
        .await
        .expect("echo hung");
        (result, back)
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        rand::fill(&mut data[..]);
        data
    }

    #[tokio::test]
    async fn echo_over_tls_with_the_custom_ca_carries_8_mib_intact() {
        let pki = TestPki::new();
        let (closes, mut closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let ws = open(&connector, &server.addr.to_string()).await.unwrap();

        let data = random_bytes(8 * 1024 * 1024);
        let counters = TunnelCounters::new();
        let (result, back) = echo_through(ws, &data, &counters).await;

        assert_eq!(
            hex::encode(Sha256::digest(&back)),
            hex::encode(Sha256::digest(&data))
        );
        let info = result.unwrap();
        assert_eq!(info.ended_by, TunnelEnd::LocalEof);
        assert_eq!(info.code, Some(1000));
        assert_eq!(counters.bytes_to_remote(), data.len() as u64);
        assert_eq!(counters.bytes_from_remote(), data.len() as u64);
        assert_eq!(
            closes_seen.recv().await,
            Some(Some(1000)),
            "the server must see Close(1000)"
        );
    }

    #[tokio::test]
    async fn the_upgrade_request_is_presigned_for_the_host_and_port_actually_sent() {
        let pki = TestPki::new();
        let (closes, _closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let now = SystemTime::now();
        let request = request_to(&server.addr.to_string());
        let ws = connector
            .open_tunnel(&request, &credentials(), now)
            .await
            .unwrap();
        drop(ws);

        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        let seen = &seen[0];
        let header = |name: &str| {
            seen.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let host = header("host").unwrap();
        assert_eq!(
            host,
            server.addr.to_string(),
            "Host must carry the non-default port"
        );
        assert_eq!(
            header("user-agent"),
            Some(format!("bastionless/{}", env!("CARGO_PKG_VERSION")))
        );
        assert_eq!(header("sec-websocket-protocol"), None, "no subprotocol");
        assert_eq!(
            header("sec-websocket-extensions"),
            None,
            "no extensions (no permessage-deflate)"
        );
        assert!(
            seen.path_and_query.starts_with(
                "/openTunnel?instanceConnectEndpointId=eice-0123456789abcdef0&remotePort=22&privateIpAddress=10.1.2.3&maxTunnelDuration=600&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
            ),
            "{}",
            seen.path_and_query.split("X-Amz-Credential").next().unwrap()
        );

        // Re-sign as a server would, from the Host header it received: same signature only if
        // the signed host is exactly the Host that was sent.
        let mut as_received = request.clone();
        as_received.endpoint = EndpointAddress::parse(&host).unwrap();
        let expected = OpenTunnelUrl::presign(&as_received, &credentials(), now).unwrap();
        let expected_path = expected
            .expose_secret()
            .split_once(host.as_str())
            .unwrap()
            .1;
        assert_eq!(seen.path_and_query, expected_path);
    }

    #[tokio::test]
    async fn without_the_ca_the_tls_handshake_fails_with_a_certificate_error() {
        let pki = TestPki::new();
        let (closes, _closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        let connector = connector(Vec::new(), ProxySettings::direct());
        let err = open(&connector, &server.addr.to_string())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EicError::Certificate { host, .. } if host == "127.0.0.1"),
            "{err}"
        );
        assert!(err.to_string().contains("AWS_CA_BUNDLE"), "{err}");
        assert!(
            server.requests().is_empty(),
            "no request may be sent over an untrusted connection"
        );
    }

    #[tokio::test]
    async fn a_403_refusal_gives_status_error_code_message_and_request_id() {
        let pki = TestPki::new();
        let script = Script::Reject {
            status: 403,
            body: r#"{"ErrorCode":"AccessDenied","Message":"User is not authorized to perform ec2-instance-connect:OpenTunnel"}"#,
            request_id: "2b7a0c4e-0000-4000-8000-000000000403",
        };
        let server = TestServer::start(Some(pki.server_config.clone()), script).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let err = open(&connector, &server.addr.to_string())
            .await
            .unwrap_err();
        let EicError::UpgradeRejected(rejection) = &err else {
            panic!("expected UpgradeRejected, got {err}")
        };
        assert_eq!(rejection.status, 403);
        assert_eq!(rejection.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(
            rejection.message.as_deref(),
            Some("User is not authorized to perform ec2-instance-connect:OpenTunnel")
        );
        assert_eq!(
            rejection.request_id.as_deref(),
            Some("2b7a0c4e-0000-4000-8000-000000000403")
        );
        let shown = err.to_string();
        assert!(shown.contains("HTTP 403 AccessDenied"), "{shown}");
        assert!(
            !shown.contains("X-Amz-Signature") && !shown.contains("session"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn server_close_1011_surfaces_unable_to_connect_to_target() {
        let pki = TestPki::new();
        let script = Script::CloseWith {
            code: 1011,
            reason: "Unable to connect to target",
        };
        let server = TestServer::start(Some(pki.server_config.clone()), script).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let ws = open(&connector, &server.addr.to_string()).await.unwrap();

        let (mut app, local) = tokio::io::duplex(1024);
        let counters = TunnelCounters::new();
        let err = tokio::time::timeout(STEP, pump(local, ws, &counters))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, EicError::ClosedByServer { code: 1011, reason } if reason == "Unable to connect to target"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("Websocket Closure Reason: Unable to connect to target")
        );
        let mut rest = Vec::new();
        let read = tokio::time::timeout(STEP, app.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, 0, "the local side must see EOF");
    }

    #[tokio::test]
    async fn local_eof_sends_close_1000_and_the_pump_ends_promptly() {
        let pki = TestPki::new();
        let (closes, mut closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let ws = open(&connector, &server.addr.to_string()).await.unwrap();

        let (mut app, local) = tokio::io::duplex(1024);
        app.shutdown().await.unwrap();
        let started = Instant::now();
        let info = tokio::time::timeout(STEP, pump(local, ws, &TunnelCounters::new()))
            .await
            .unwrap()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            info,
            CloseInfo {
                ended_by: TunnelEnd::LocalEof,
                code: Some(1000),
                reason: String::new()
            }
        );
        assert!(
            took < Duration::from_secs(1),
            "pump took {took:?} after local EOF"
        );
        assert_eq!(closes_seen.recv().await, Some(Some(1000)));
    }

    #[tokio::test]
    async fn a_text_frame_is_rejected_and_the_tunnel_closed() {
        let pki = TestPki::new();
        let (closes, mut closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::SendText { closes }).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let ws = open(&connector, &server.addr.to_string()).await.unwrap();

        let (_app, local) = tokio::io::duplex(1024);
        let err = tokio::time::timeout(STEP, pump(local, ws, &TunnelCounters::new()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, EicError::UnexpectedTextFrame), "{err}");
        let code = tokio::time::timeout(STEP, closes_seen.recv())
            .await
            .unwrap();
        assert_eq!(
            code,
            Some(Some(1003)),
            "the client closes with 1003 (unsupported data)"
        );
    }

    #[tokio::test]
    async fn https_proxy_is_used_with_basic_auth_and_bypassed_per_no_proxy() {
        let pki = TestPki::new();
        let (closes, _closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        // base64("tunnel user:p@ss:word")
        let proxy = TestProxy::start(ProxyMode::Forward {
            expected_auth: "dHVubmVsIHVzZXI6cEBzczp3b3Jk",
        })
        .await;
        let proxy_url = format!("http://tunnel%20user:p%40ss%3Aword@{}", proxy.addr);

        // Through the proxy (NO_PROXY names other hosts only).
        let via_proxy = ProxySettings::new(
            Some(("HTTPS_PROXY", &proxy_url)),
            Some("localhost,.internal,10.0.0.0/8"),
        )
        .unwrap();
        let connector_via = connector(vec![pki.ca_file.path().to_owned()], via_proxy);
        let ws = open(&connector_via, &server.addr.to_string())
            .await
            .unwrap();
        let data = random_bytes(300_000);
        let counters = TunnelCounters::new();
        let (result, back) = echo_through(ws, &data, &counters).await;
        result.unwrap();
        assert_eq!(back, data);
        let requests = proxy.requests();
        assert_eq!(requests.len(), 1);
        assert!(
            requests[0].starts_with(&format!("CONNECT {} HTTP/1.1\r\n", server.addr)),
            "{}",
            requests[0]
        );
        assert!(
            requests[0].contains(&format!("\r\nHost: {}\r\n", server.addr)),
            "{}",
            requests[0]
        );

        // Bypassed: the proxy sees nothing new, and the tunnel still works.
        let bypassing = ProxySettings::new(
            Some(("HTTPS_PROXY", &proxy_url)),
            Some("example.com, 127.0.0.0/8"),
        )
        .unwrap();
        let connector_direct = connector(vec![pki.ca_file.path().to_owned()], bypassing);
        let ws = open(&connector_direct, &server.addr.to_string())
            .await
            .unwrap();
        let (result, back) = echo_through(ws, b"direct", &TunnelCounters::new()).await;
        result.unwrap();
        assert_eq!(back, b"direct");
        assert_eq!(proxy.requests().len(), 1, "NO_PROXY must bypass the proxy");
    }

    #[tokio::test]
    async fn a_proxy_refusing_credentials_gives_a_407_proxy_error_without_the_password() {
        let pki = TestPki::new();
        let (closes, _closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        let proxy = TestProxy::start(ProxyMode::Forward {
            expected_auth: "c29tZW9uZTplbHNl",
        })
        .await;
        let settings = ProxySettings::new(
            Some(("HTTPS_PROXY", &format!("http://me:hunter2@{}", proxy.addr))),
            None,
        )
        .unwrap();
        let err = open(
            &connector(vec![pki.ca_file.path().to_owned()], settings),
            &server.addr.to_string(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, EicError::ProxyRejected { status: 407, .. }),
            "{err}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains("HTTPS_PROXY") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_stalled_proxy_hits_the_connect_timeout() {
        let proxy = TestProxy::start(ProxyMode::Stall).await;
        let settings = ProxySettings::new(
            Some(("HTTPS_PROXY", &format!("http://{}", proxy.addr))),
            None,
        )
        .unwrap();
        let connector = Connector::new(ConnectOptions {
            proxy: settings,
            connect_timeout: Duration::from_millis(300),
            ..Default::default()
        })
        .unwrap();
        let started = Instant::now();
        let err = open(&connector, "127.0.0.1:9").await.unwrap_err();
        assert!(
            matches!(&err, EicError::ConnectTimeout { after, .. } if *after == Duration::from_millis(300)),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(proxy.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_tls_hits_the_handshake_timeout() {
        let server = TestServer::start(None, Script::Silent).await;
        let connector = Connector::new(ConnectOptions {
            handshake_timeout: Duration::from_millis(300),
            ..Default::default()
        })
        .unwrap();
        let started = Instant::now();
        let err = open(&connector, &server.addr.to_string())
            .await
            .unwrap_err();
        assert!(matches!(&err, EicError::HandshakeTimeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = open(
            &connector(Vec::new(), ProxySettings::direct()),
            &addr.to_string(),
        )
        .await
        .unwrap_err();
        assert!(matches!(&err, EicError::Connect { .. }), "{err}");
    }

    #[tokio::test]
    async fn plain_ws_works_to_loopback() {
        let (closes, mut closes_seen) = mpsc::unbounded_channel();
        let server = TestServer::start(None, Script::Echo { closes }).await;
        let connector = connector(Vec::new(), ProxySettings::direct());
        let ws = open(&connector, &format!("ws://{}", server.addr))
            .await
            .unwrap();
        let (result, back) = echo_through(ws, b"plain loopback", &TunnelCounters::new()).await;
        assert_eq!(result.unwrap().code, Some(1000));
        assert_eq!(back, b"plain loopback");
        assert_eq!(closes_seen.recv().await, Some(Some(1000)));
    }

    #[tokio::test]
    async fn counters_are_readable_while_the_tunnel_runs() {
        let pki = TestPki::new();
        let (closes, _closes_seen) = mpsc::unbounded_channel();
        let server =
            TestServer::start(Some(pki.server_config.clone()), Script::Echo { closes }).await;
        let connector = connector(vec![pki.ca_file.path().to_owned()], ProxySettings::direct());
        let ws = open(&connector, &server.addr.to_string()).await.unwrap();
        let counters = Arc::new(TunnelCounters::new());
        let (mut app, local) = tokio::io::duplex(64 * 1024);
        let pump_counters = counters.clone();
        let running = tokio::spawn(async move { pump(local, ws, &pump_counters).await });
        app.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        tokio::time::timeout(STEP, app.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back, b"ping");
        // The pump counts a chunk once it has been handed to the local side, which can be a
        // moment after the reader here got it.
        let deadline = Instant::now() + STEP;
        while (counters.bytes_to_remote(), counters.bytes_from_remote()) != (4, 4) {
            assert!(
                Instant::now() < deadline,
                "counters stuck at {} / {}",
                counters.bytes_to_remote(),
                counters.bytes_from_remote()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(app);
        tokio::time::timeout(STEP, running)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
