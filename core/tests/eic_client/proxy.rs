//! A tiny HTTP CONNECT proxy on 127.0.0.1 that records what it was asked, checks Basic auth,
//! and splices bytes to the target. Only ever connects to loopback targets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
pub enum ProxyMode {
    /// Require `Proxy-Authorization: Basic <expected>` (base64 of user:password), else 407.
    Forward { expected_auth: &'static str },
    /// Read the CONNECT request and never answer (for connect timeouts).
    Stall,
}

pub struct TestProxy {
    pub addr: SocketAddr,
    /// Every request head received, verbatim.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl TestProxy {
    pub async fn start(mode: ProxyMode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(handle(client, mode, recorded.clone()));
            }
        });
        Self { addr, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn handle(mut client: TcpStream, mode: ProxyMode, requests: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    requests.lock().unwrap().push(head.clone());
    let expected_auth = match mode {
        ProxyMode::Stall => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        ProxyMode::Forward { expected_auth } => expected_auth,
    };
    let authorized = head.lines().any(|line| {
        line.eq_ignore_ascii_case(&format!("proxy-authorization: basic {expected_auth}"))
    });
    if !authorized {
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    let target = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let target_addr: SocketAddr = target.parse().expect("test proxy targets are IP:port");
    assert!(
        target_addr.ip().is_loopback(),
        "the test proxy only forwards to loopback"
    );
    let Ok(mut upstream) = TcpStream::connect(target_addr).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
