//! Listening: our own accept loop on hyper, so that every connection is bounded (a connection
//! limit, a header and body deadline, a lifetime), and TLS (rustls) is the same loop with a
//! handshake in front.

use crate::server::{Inner, Peer, router};
use crate::{BrokerError, TlsFiles};
use axum::body::Body;
use axum::http::Request;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tower::ServiceExt;

/// rustls server configuration from PEM files (ring provider, TLS 1.2 and 1.3, HTTP/1.1).
pub(crate) fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, BrokerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    const MAX_PEM: u64 = 1024 * 1024;
    let read = |what: &'static str, path: &std::path::Path| {
        crate::store::read_bounded(path, MAX_PEM).map_err(|e| BrokerError::Tls {
            what,
            path: path.into(),
            source: match e {
                crate::store::BoundedRead::Io(e) => Box::new(e),
                crate::store::BoundedRead::TooLarge => "more than 1 MiB".into(),
            },
        })
    };
    let tls_err =
        |what: &'static str,
         path: &std::path::Path,
         e: Box<dyn std::error::Error + Send + Sync>| BrokerError::Tls {
            what,
            path: path.into(),
            source: e,
        };
    let cert_pem = read("cannot read the certificate", &files.cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err("the certificate file is not PEM", &files.cert, Box::new(e)))?;
    if certs.is_empty() {
        return Err(tls_err(
            "no certificate in",
            &files.cert,
            "no CERTIFICATE block".into(),
        ));
    }
    let key_pem = read("cannot read the private key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| tls_err("no private key in", &files.key, Box::new(e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("unusable protocol versions for", &files.cert, Box::new(e)))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_err(
                "the key does not fit the certificate",
                &files.key,
                Box::new(e),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A running broker.
#[derive(Debug)]
pub struct Server {
    pub local_addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Serve until the process is stopped.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

pub(crate) async fn serve(state: Arc<Inner>, addr: SocketAddr) -> Result<Server, BrokerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BrokerError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| BrokerError::Listen { addr, source })?;
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let app = router(state.clone());
    let limits = state.limits;
    let tls = state.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = rx.changed() => break,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service =
                    hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(Peer(peer));
                        app.clone().oneshot(req.map(Body::new))
                    });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.request_timeout)
                    .keep_alive(true)
                    .max_buf_size(64 * 1024);
                match tls {
                    Some(acceptor) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(limits.request_timeout, acceptor.accept(stream))
                                .await
                        else {
                            return;
                        };
                        let conn =
                            builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let _ = tokio::time::timeout(limits.connection_lifetime, conn).await;
                    }
                    None => {
                        let conn =
                            builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let _ = tokio::time::timeout(limits.connection_lifetime, conn).await;
                    }
                }
            });
        }
    });
    Ok(Server {
        local_addr,
        shutdown: tx,
        task,
    })
}
