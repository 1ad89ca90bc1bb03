//! `mcpgate serve --config FILE`: the gateway. The configured authorization (mcpgate's OAuth
//! proxy, or tokens of an existing authorization server) in front of its MCP servers, on one
//! listener, until Ctrl-C or SIGTERM (in-flight requests finish). SIGHUP reads the file again
//! and swaps in the app it describes — routes, policy, clients, API keys — while requests and
//! streams in flight finish on the one they started on; a file that does not load or build
//! leaves the running app in place, and the log says why.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Mutex;

use crate::app::{Kept, Served, build, with_operations};
use crate::boot::{LateApp, retry_with_backoff, waiting_app};
use crate::config::Config;
use crate::exit::{BAD_CONFIG, RUNTIME_FAILURE, ServeError};

/// How long a stdio upstream a reload removed keeps running, for the requests it still serves.
const REMOVED_UPSTREAM_GRACE: Duration = Duration::from_secs(30);

/// Runs the gateway configured by `path`.
pub fn run(path: &Path, log_format: crate::LogFormat) -> ExitCode {
    let config = match crate::check::load(path) {
        Ok(config) => config,
        Err(problems) => {
            for problem in problems {
                eprintln!("{}: {problem}", path.display());
            }
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let runtime = match crate::server_runtime(log_format) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let open_files = crate::fd_limit::raise();
    tracing::debug!(?open_files, "open-files limit");
    match runtime.block_on(serve(path.to_owned(), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ServeError::Config { .. }) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(BAD_CONFIG)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(RUNTIME_FAILURE)
        }
    }
}

/// The running gateway: what serves requests, and what it was built from.
struct Running {
    late: LateApp<Served>,
    metrics: Option<PrometheusHandle>,
    current: Mutex<Current>,
}

/// The configuration being served, what its next build may keep, and how many builds have
/// been swapped in (a late first build does not undo a reload that came before it).
struct Current {
    config: Config,
    kept: Kept,
    generation: u64,
}

async fn serve(path: PathBuf, config: Config) -> Result<(), ServeError> {
    let endpoints: Vec<String> =
        config.routes().iter().map(|route| format!("{}{}", config.public_url(), route.path)).collect();
    // Installed first, so that the provider's discovery is measured too.
    let metrics = if config.server.metrics { crate::metrics::install() } else { None };
    let first = build(&config, metrics.as_ref(), &Kept::default()).await;
    let listener = crate::listener::NoDelayListener::bind(config.server.listen).await.map_err(|e| {
        ServeError::Runtime(format!("server.listen: cannot listen on {}: {e}", config.server.listen))
    })?;
    let (app, kept, waiting) = match first {
        Ok(built) => {
            tracing::info!(routes = %built.upstreams, "mcpgate listening on {}", config.server.listen);
            (built.app, built.kept, false)
        }
        Err(ServeError::ProviderUnavailable(why)) => {
            tracing::warn!(
                error = %why,
                "mcpgate listening on {}, answering 503 until its identity provider is reachable",
                config.server.listen
            );
            (with_operations(&config, waiting_app(), metrics.as_ref())?, Kept::default(), true)
        }
        Err(e) => return Err(e),
    };
    let current = Current { config, kept, generation: 0 };
    let running = Arc::new(Running { late: LateApp::new(app), metrics, current: Mutex::new(current) });
    if waiting {
        tokio::spawn(build_when_reachable(running.clone()));
    }
    tokio::spawn(reload_on_hangup(path, running.clone()));
    for endpoint in &endpoints {
        println!("MCP endpoint: {endpoint}");
    }
    let served = crate::listener::serve(listener, running.late.clone(), shutdown_signal()).await;
    let children = running.current.lock().await.kept.stdio();
    for child in children {
        child.shutdown().await;
    }
    served.map_err(|e| ServeError::Runtime(e.to_string()))
}

/// Retries [`build`] until the provider answers, then serves the built app — unless a reload
/// was swapped in meanwhile.
async fn build_when_reachable(running: Arc<Running>) {
    let (config, generation) = {
        let current = running.current.lock().await;
        (current.config.clone(), current.generation)
    };
    let nothing_kept = Kept::default();
    let built = retry_with_backoff("reaching the identity provider", || {
        build(&config, running.metrics.as_ref(), &nothing_kept)
    })
    .await;
    let mut current = running.current.lock().await;
    if current.generation != generation {
        drop(current);
        for upstream in built.kept.stdio() {
            upstream.shutdown().await;
        }
        return;
    }
    tracing::info!(routes = %built.upstreams, "the identity provider answered: serving");
    current.kept = built.kept;
    current.generation += 1;
    running.late.replace(built.app);
}

/// Reloads the configuration at every SIGHUP.
async fn reload_on_hangup(path: PathBuf, running: Arc<Running>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reloading is off");
            return;
        };
        while hangups.recv().await.is_some() {
            reload(&path, &running).await;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, running);
}

/// Reads `path` again and swaps in the app it describes; on any problem the running app stays
/// and the log says why.
async fn reload(path: &Path, running: &Running) {
    let config = match crate::check::load(path) {
        Ok(config) => config,
        Err(problems) => {
            for problem in &problems {
                tracing::error!(file = %path.display(), "reload refused, the running configuration stays: {problem}");
            }
            return;
        }
    };
    // One reload at a time.
    let mut current = running.current.lock().await;
    for (what, changed) in [
        ("server.listen", config.server.listen != current.config.server.listen),
        ("server.metrics", config.server.metrics != current.config.server.metrics),
    ] {
        if changed {
            tracing::warn!(key = what, "takes effect at the next start, not at a reload");
        }
    }
    match build(&config, running.metrics.as_ref(), &current.kept).await {
        Ok(built) => {
            running.late.replace(built.app);
            let removed = current.kept.dropped_by(&built.kept);
            *current = Current { config, kept: built.kept, generation: current.generation + 1 };
            tracing::info!(routes = %built.upstreams, file = %path.display(), "configuration reloaded");
            if !removed.is_empty() {
                tokio::spawn(async move {
                    tokio::time::sleep(REMOVED_UPSTREAM_GRACE).await;
                    for upstream in removed {
                        upstream.shutdown().await;
                    }
                });
            }
        }
        Err(e) => {
            tracing::error!(error = %e, file = %path.display(), "reload refused, the running configuration stays");
        }
    }
}
/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
