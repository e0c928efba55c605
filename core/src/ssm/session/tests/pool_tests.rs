//! Spreading connections over several sessions.

use std::num::NonZeroUsize;

use super::fake::{Destination, FakeService, Scenario, echo_server};
use super::{INSTANCE, config, echo, payload};
use crate::ssm::session::{PoolError, PortSessionPool, StreamError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_go_to_idle_or_new_sessions_before_sharing_one() {
    let echo_addr = echo_server().await;
    let (service, connector) =
        FakeService::on_loopback(Scenario::new(Destination::Tcp(echo_addr))).await;
    let pool = PortSessionPool::new(
        service.api(),
        INSTANCE,
        8080,
        None,
        config(connector),
        NonZeroUsize::new(2).unwrap(),
    );
    let first = pool.open_stream().await.unwrap();
    let second = pool.open_stream().await.unwrap();
    let third = pool.open_stream().await.unwrap();
    let per_session: Vec<usize> = pool.stats().await.iter().map(|s| s.open_streams).collect();
    assert_eq!(per_session, vec![2, 1]);
    assert_eq!(service.started().len(), 2);

    let transfers: Vec<_> = [first, second, third]
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let data = payload(i as u8, 256 * 1024);
            tokio::spawn(async move { echo(stream, data.clone()).await == data })
        })
        .collect();
    for transfer in transfers {
        assert!(transfer.await.unwrap());
    }
    pool.close().await.unwrap();
    for session in ["tester-00000000000000001", "tester-00000000000000002"] {
        let record = service.record(session);
        assert!(record.violations.is_empty(), "{:?}", record.violations);
        assert_eq!(record.terminate_calls, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_sessions_take_one_connection_each() {
    let echo_addr = echo_server().await;
    let mut scenario = Scenario::new(Destination::Tcp(echo_addr));
    scenario.agent_version = "2.3.1000.0";
    let (service, connector) = FakeService::on_loopback(scenario).await;
    let pool = PortSessionPool::new(
        service.api(),
        INSTANCE,
        8080,
        None,
        config(connector),
        NonZeroUsize::new(2).unwrap(),
    );
    let first = pool.open_stream().await.unwrap();
    let second = pool.open_stream().await.unwrap();
    assert!(matches!(
        pool.open_stream().await,
        Err(PoolError::Stream(StreamError::Busy))
    ));
    let data = payload(9, 64 * 1024);
    assert_eq!(echo(first, data.clone()).await, data);
    assert_eq!(echo(second, data.clone()).await, data);
    pool.close().await.unwrap();
}
