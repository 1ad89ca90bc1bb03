//! `mcpgate check --config FILE`: validates the file, resolves its secrets and fetches what the
//! provider publishes, reporting each problem with the key it concerns. Exit status: 0 when
//! all is well, 2 for a bad configuration, 1 when something could not be reached.

use std::path::Path;
use std::process::ExitCode;

use mcpgate::crypto::Keyring;
use mcpgate::upstream::{UpstreamError, discover};
use mcpgate::verify::{JwksCache, JwksCacheConfig, JwksFetchError};

use crate::config::{AuthMode, Config, Origin, Problem, Source};
use crate::exit::{BAD_CONFIG, RUNTIME_FAILURE};
use crate::providers::Provider;

/// A problem and whether it is the configuration's fault (else the network's).
struct Finding {
    problem: Problem,
    configuration: bool,
}

fn at(key: &str, message: impl Into<String>, configuration: bool) -> Finding {
    Finding {
        problem: Problem { key: key.into(), origin: Origin::File, message: message.into() },
        configuration,
    }
}

/// Reads and loads a configuration file with the process environment's overrides.
pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            key: String::new(),
            origin: Origin::File,
            message: format!("cannot read the file: {e}"),
        }]
    })?;
    Source::new(text, std::env::vars()).load()
}

/// Runs the check, printing what it finds.
pub fn run(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(problems) => {
            for problem in problems {
                eprintln!("{}: {problem}", path.display());
            }
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let mut findings = resolve_secrets(&config);
    findings.extend(find_commands(&config));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(RUNTIME_FAILURE);
        }
    };
    findings.extend(runtime.block_on(fetch_published(&config)));
    findings.extend(runtime.block_on(fetch_trusted_keys(&config)));
    if findings.is_empty() {
        println!("{}: ok — {}", path.display(), summary(&config));
        return ExitCode::SUCCESS;
    }
    for finding in &findings {
        eprintln!("{}: {}", path.display(), finding.problem);
    }
    if findings.iter().any(|f| f.configuration) {
        ExitCode::from(BAD_CONFIG)
    } else {
        ExitCode::from(RUNTIME_FAILURE)
    }
}

/// The root secret and the provider client secret, from where the file says they are.
fn resolve_secrets(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let secrets = &config.secrets;
    let root = match &secrets.secret_file {
        Some(file) => Keyring::from_file(Path::new(file)).map_err(|e| ("secrets.secret_file", e.to_string())),
        None => Keyring::from_env(&secrets.secret_env).map_err(|e| ("secrets.secret_env", e.to_string())),
    };
    if let Err((key, why)) = root {
        let hint = if why.contains("mcpgate keygen") { "" } else { " (make one with `mcpgate keygen`)" };
        findings.push(at(key, format!("the root secret is unusable: {why}{hint}"), true));
    }
    if config.auth.mode == AuthMode::Proxy {
        let auth = &config.auth;
        let ours = (auth.client_secret_env.as_deref(), auth.client_secret_file.as_deref(), "auth".to_owned());
        let clients = auth.clients.iter().enumerate().map(|(i, c)| {
            (c.client_secret_env.as_deref(), c.client_secret_file.as_deref(), format!("auth.clients[{i}]"))
        });
        let accepted = auth.accept.iter().enumerate().map(|(i, a)| {
            (a.client_secret_env.as_deref(), a.client_secret_file.as_deref(), format!("auth.accept[{i}]"))
        });
        for (env, file, section) in std::iter::once(ours).chain(clients).chain(accepted) {
            if let Some(var) = env
                && std::env::var(var).map_or(true, |v| v.trim().is_empty())
            {
                let message = format!("the environment variable {var} is not set");
                findings.push(at(&format!("{section}.client_secret_env"), message, true));
            }
            if let Some(file) = file
                && std::fs::read_to_string(file).map_or(true, |v| v.trim().is_empty())
            {
                let message = format!("cannot read a secret from {file}");
                findings.push(at(&format!("{section}.client_secret_file"), message, true));
            }
        }
    }
    findings
}

/// Each stdio upstream's program: a path to an executable file, or a name found on `PATH`.
fn find_commands(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for route in config.routes() {
        let Some(program) = route.upstream.command.as_ref().and_then(|c| c.first()) else { continue };
        if program_path(program, std::env::var_os("PATH").as_deref()).is_some() {
            continue;
        }
        let where_ = if program.contains('/') { "is not an executable file" } else { "is not found on PATH" };
        let message = format!("the program {program:?} {where_}");
        findings.push(at(&format!("{}.command", route.key), message, true));
    }
    findings
}

/// Where `program` would be started from, if it can be.
fn program_path(program: &str, path: Option<&std::ffi::OsStr>) -> Option<std::path::PathBuf> {
    let executable = |candidate: &Path| {
        use std::os::unix::fs::PermissionsExt;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let candidate = Path::new(program);
        return executable(candidate).then(|| candidate.to_owned());
    }
    std::env::split_paths(path?).map(|dir| dir.join(program)).find(|candidate| executable(candidate))
}

/// The keys of whoever else the gateway trusts, fetched and checked: configured clients'
/// `jwks_uri`, other issuers' (`[[auth.accept]]`) and enterprise IdPs'. An unreachable URL is a
/// runtime finding, an unusable key set a configuration one.
async fn fetch_trusted_keys(config: &Config) -> Vec<Finding> {
    let auth = &config.auth;
    let clients = auth.clients.iter().enumerate().filter_map(|(i, c)| {
        c.jwks_uri.as_ref().map(|url| (format!("auth.clients[{i}].jwks_uri"), url.clone()))
    });
    let accepted = auth.accept.iter().enumerate().filter_map(|(i, a)| {
        a.jwks_uri.as_ref().map(|url| (format!("auth.accept[{i}].jwks_uri"), url.clone()))
    });
    let idps = auth
        .enterprise_idps
        .iter()
        .enumerate()
        .map(|(i, idp)| (format!("auth.enterprise_idps[{i}].jwks_uri"), idp.jwks_uri.clone()));
    let mut findings = Vec::new();
    for (key, url) in clients.chain(accepted).chain(idps) {
        match JwksCache::new(&url, JwksCacheConfig::default()).refresh().await {
            Ok(_) => {}
            Err(e @ JwksFetchError::Unreachable(_)) => findings.push(at(&key, e.to_string(), false)),
            Err(e) => findings.push(at(&key, e.to_string(), true)),
        }
    }
    findings
}

/// The provider's discovery document (proxy mode) or the authorization server's keys
/// (resource mode), fetched and checked.
async fn fetch_published(config: &Config) -> Vec<Finding> {
    let auth = &config.auth;
    match auth.mode {
        AuthMode::Proxy => match auth.chosen_provider() {
            // Its problems were reported with the file's.
            Err(_) => Vec::new(),
            Ok(Provider::Oidc(oidc)) => match discover(&oidc.discovery_url).await {
                Ok(_) => Vec::new(),
                Err(UpstreamError::Unavailable(why)) => {
                    vec![at(
                        "auth.oidc.discovery_url",
                        format!("cannot fetch the discovery document: {why}"),
                        false,
                    )]
                }
                Err(e) => vec![at(
                    "auth.oidc.discovery_url",
                    format!("the discovery document is unusable: {e}"),
                    true,
                )],
            },
            // A built-in provider: building it reads its discovery document, if it has one.
            Ok(provider) => match auth.upstream(secrecy::SecretString::from("unused")).await {
                Ok(_) => Vec::new(),
                Err(e) => vec![at(&format!("auth.{}", provider.name()), e.to_string(), false)],
            },
        },
        AuthMode::Resource => {
            let Some(resource) = &auth.resource else { return Vec::new() };
            let key = "auth.resource.jwks_uri";
            match JwksCache::new(&resource.jwks_uri, JwksCacheConfig::default()).refresh().await {
                Ok(_) => Vec::new(),
                Err(e @ JwksFetchError::Unreachable(_)) => vec![at(key, e.to_string(), false)],
                Err(e) => vec![at(key, e.to_string(), true)],
            }
        }
    }
}

/// What the gateway will do, in a few lines.
fn summary(config: &Config) -> String {
    let auth = &config.auth;
    let mode = match auth.mode {
        AuthMode::Proxy => {
            let redirects = match &auth.allowed_redirect_uris {
                None => "any redirect URI the client rules accept".to_owned(),
                Some(patterns) => format!("redirect URIs matching {patterns:?}"),
            };
            format!("OAuth proxy for provider {}, consent {:?}, {redirects}", auth.provider, auth.consent)
        }
        AuthMode::Resource => match &auth.resource {
            Some(resource) => format!(
                "resource server for tokens of {} (audience {}, authorization servers {:?})",
                resource.issuer,
                resource.audience.as_deref().unwrap_or("each route's URL"),
                resource.authorization_servers
            ),
            None => "resource server".into(),
        },
    };
    let routes: Vec<String> = config.routes().iter().map(|route| route_summary(config, route)).collect();
    format!("{mode}; store {}\n{}", mcpgate::store::redacted_url(&config.store.url), routes.join("\n"))
}

/// One route, in a line.
fn route_summary(config: &Config, route: &crate::config::Route<'_>) -> String {
    let upstream_config = route.upstream;
    let upstream = match (&upstream_config.url, &upstream_config.command) {
        (Some(url), _) => url.clone(),
        (None, Some(command)) => {
            let per = if upstream_config.per_session { "one per session" } else { "shared" };
            format!("stdio `{}` ({per})", command.join(" "))
        }
        (None, None) => "nothing".into(),
    };
    let forwarded = match (upstream_config.forward_identity, upstream_config.forward_provider_token) {
        _ if route.is_public() => "public: no token, nothing forwarded",
        (true, true) => "identity and provider token forwarded",
        (true, false) => "identity forwarded",
        (false, true) => "provider token forwarded",
        (false, false) => "nothing forwarded",
    };
    let scopes = match route.is_public() {
        true => String::new(),
        false => format!(", scopes {:?}", route.scopes),
    };
    format!("  MCP at {}{} → {upstream} ({forwarded}{scopes})", config.public_url(), route.path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn programs_are_found_by_path_or_on_path() {
        let path = std::ffi::OsString::from("/nonexistent:/bin:/usr/bin");
        assert!(super::program_path("sh", Some(&path)).is_some());
        assert!(super::program_path("/bin/sh", None).is_some());
        assert!(super::program_path("no-such-program-anywhere", Some(&path)).is_none());
        // A file that is not executable is not a program.
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(super::program_path(file.path().to_str().unwrap(), None).is_none());
        assert!(super::program_path("sh", None).is_none());
    }
}
