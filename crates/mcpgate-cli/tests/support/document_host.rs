//! A client's own web server, as the client ID metadata document path needs one: https on
//! loopback (the SDKs accept only https document URLs) with a certificate from a throwaway CA,
//! written out as a PEM file for the gateway to trust (`SSL_CERT_FILE`). It serves the JSON
//! documents it is given and counts how often each was fetched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Default)]
struct Documents {
    served: HashMap<String, serde_json::Value>,
    fetches: HashMap<String, usize>,
}

/// The running server; stops when dropped.
pub struct DocumentHost {
    base: String,
    ca_file: PathBuf,
    documents: Arc<Mutex<Documents>>,
    task: tokio::task::JoinHandle<()>,
}

impl DocumentHost {
    /// Starts the server on a free loopback port, its CA certificate written to `dir/ca.pem`.
    pub async fn start(dir: &Path) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "mcpgate test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        leaf_params.distinguished_name.push(DnType::CommonName, "client.test");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let tls = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();

        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
        let documents = Arc::new(Mutex::new(Documents::default()));
        let app = Router::new().route("/{name}", axum::routing::get(serve)).with_state(documents.clone());
        let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(tls)) };
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, ca_file, documents, task }
    }

    /// The URL `name` is served at.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Serves `document` at [`url`](Self::url)`(name)`.
    pub fn publish(&self, name: &str, document: serde_json::Value) {
        self.documents.lock().unwrap().served.insert(name.to_owned(), document);
    }

    /// How many times `name` was fetched.
    pub fn fetches(&self, name: &str) -> usize {
        self.documents.lock().unwrap().fetches.get(name).copied().unwrap_or(0)
    }

    /// The PEM file holding the CA certificate the server's certificate chains to.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

impl Drop for DocumentHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(documents): State<Arc<Mutex<Documents>>>, UrlPath(name): UrlPath<String>) -> Response {
    let mut documents = documents.lock().unwrap();
    *documents.fetches.entry(name.clone()).or_default() += 1;
    match documents.served.get(&name) {
        Some(document) => axum::Json(document.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Loopback TCP with a TLS handshake on each accepted connection; a failed handshake is
/// dropped and the next connection accepted.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
