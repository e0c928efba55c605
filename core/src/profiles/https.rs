//! One HTTPS client per set of trusted certificates, shared by every profile and every SDK
//! client of an engine ([`HttpsClients`]).
//!
//! A refresh makes a thousand or more AWS calls through a few SDK clients per profile and
//! region. Left to itself, each `aws-config` load makes an HTTPS client of its own, so each
//! profile keeps its own connection pool and TLS session cache: with 30 profiles into 30
//! accounts, the same endpoint is dialled and fully handshaken dozens of times over. And every
//! SDK client, when constructed, builds its HTTPS connector once just to validate it (a root
//! store parsed from the OS's ~150 certificates and a rustls configuration), which was the
//! single largest cost of a refresh. Here each trust set (the OS roots, plus the PEM
//! certificates of `ca_bundle` / `AWS_CA_BUNDLE` when given) gets one client, built once, whose
//! connector is made on first use and then reused by every SDK client: connections and TLS
//! sessions are shared across profiles, which is safe, since SigV4 signs each request and a
//! connection carries no identity.
//!
//! The clients are exactly what `aws-config` would make: without a bundle, its default client
//! (rustls with aws-lc, the OS roots, the proxy from `HTTPS_PROXY`/`NO_PROXY`); with bundles,
//! those roots plus the bundles' certificates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The PEM contents of the extra CA bundles, in order: what a client trusts besides the OS.
type TrustKey = Vec<Vec<u8>>;

/// The HTTPS clients made so far, by trust set. Clones share them: the engine keeps one for
/// its whole life, so its connections outlive each refresh's profile catalog. Each engine has
/// its own, as connections belong to the runtime that opened them.
#[derive(Debug, Clone, Default)]
pub struct HttpsClients(Arc<Mutex<HashMap<TrustKey, SharedHttpClient>>>);

impl HttpsClients {
    /// The client trusting the OS roots and the PEM certificates in `bundles` (none:
    /// `aws-config`'s default client), made on first request.
    pub(crate) fn trusting(&self, bundles: Vec<Vec<u8>>) -> Result<SharedHttpClient, String> {
        let mut clients = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&bundles) {
            return Ok(client.clone());
        }
        let client = if bundles.is_empty() {
            default_client()
        } else {
            let mut trust = TrustStore::empty().with_native_roots(true);
            for pem in &bundles {
                trust = trust.with_pem_certificate(pem.clone());
            }
            let context = TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .map_err(|e| e.to_string())?;
            Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context)
                .build_https()
        };
        let client = SharedHttpClient::new(ConnectorOnFirstUse(client));
        clients.insert(bundles, client.clone());
        Ok(client)
    }

    /// How many clients were made: one per trust set asked for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// `aws-config`'s default HTTPS client, as `default-https-client` builds it with the latest
/// behaviour version: rustls with aws-lc, the OS roots, the proxy from the environment.
/// (`build_with_connector_fn` is how `aws-smithy-runtime` itself builds it.)
fn default_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// A shared client whose connector is built on first use only. The client it wraps would
/// build a whole connector (root store and TLS configuration) again each time an SDK client
/// is constructed, only to check that it can; this one is shared by clients constructed per
/// region and refresh, and its connector is built once, by the first call, and cached.
#[derive(Debug)]
struct ConnectorOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectorOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_is_made_per_trust_set() {
        let clients = HttpsClients::default();
        let pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        for _ in 0..3 {
            clients.trusting(vec![pem.clone()]).unwrap();
            clients.trusting(Vec::new()).unwrap();
        }
        assert_eq!(clients.len(), 2);
        clients.trusting(vec![pem.clone(), pem]).unwrap();
        assert_eq!(clients.len(), 3);
        // Clones share the clients.
        clients.clone().trusting(Vec::new()).unwrap();
        assert_eq!(clients.len(), 3);
    }
}
