//! The checks beyond the types: every rule a configuration must meet that serde cannot say,
//! each reported at its key.

use mcpgate::authz::{ConsentMode, GrantType, JWT_BEARER, Registration};
use mcpgate::client_address::TrustedProxies;
use mcpgate::resource::AllowedOrigins;
use mcpgate::verify::{ApiKey, ApiKeyError, ApiKeyVerifier};

use super::schema::{AcceptKind, AuthConfig, AuthMode, Config};

/// The checks beyond the types: (key, message) for each problem.
pub(super) fn validate(config: &Config) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: &str| problems.push((key.to_owned(), message.to_owned()));

    if !config.server.mcp_path.starts_with('/') {
        problem("server.mcp_path", "must start with /");
    }
    if let Some(url) = &config.server.public_url
        && let Err(why) = check_public_url(url)
    {
        problem("server.public_url", &why);
    }
    validate_routes(config, &mut problem);
    if let Err(e) = config.trusted_proxies() {
        problem("server.trusted_proxies", &e.to_string());
    }
    if let Some(origins) = &config.server.allowed_origins
        && let Err(e) = AllowedOrigins::for_resource(&config.public_url()).and_then(|o| o.only(origins))
    {
        problem("server.allowed_origins", &e.to_string());
    }
    if let Err(e) = crate::host_check::AllowedHosts::new(
        &config.public_url(),
        &config.server.allowed_hosts,
        TrustedProxies::none(),
    ) {
        problem("server.allowed_hosts", &e);
    }
    if config.server.max_request_bytes < 1024 {
        problem("server.max_request_bytes", "must be at least 1024");
    }
    if let Err(e) = config.scope_implications() {
        problem("auth.scope_implications", &e);
    } else {
        if let Err(e) = config.policy() {
            problem("policy.rules", &e);
        }
        for (i, route) in config.routes.iter().enumerate() {
            if let Some(policy) = &route.policy
                && let Err(e) = policy.compile(config.scope_implications().unwrap_or_default())
            {
                problem(&format!("routes[{i}].policy.rules"), &e);
            }
        }
    }

    let auth = &config.auth;
    match auth.mode {
        AuthMode::Proxy => {
            if auth.client_id.as_deref().is_none_or(str::is_empty) {
                problem("auth.client_id", "is required in proxy mode (our client id at the provider)");
            }
            match (&auth.client_secret_env, &auth.client_secret_file) {
                (None, None) => {
                    problem("auth.client_secret_env", "is required in proxy mode (or client_secret_file)");
                }
                (Some(_), Some(_)) => problem(
                    "auth.client_secret_env",
                    "give client_secret_env or client_secret_file, not both",
                ),
                _ => {}
            }
            for (key, message) in auth.chosen_provider().err().unwrap_or_default() {
                problem(&key, &message);
            }
            if auth.resource.is_some() {
                problem("auth.resource", "applies only to mode = \"resource\"");
            }
            if auth.unconfirmed_client_ttl_secs == 0 {
                problem("auth.unconfirmed_client_ttl_secs", "must be at least 1");
            }
            for (i, client) in auth.clients.iter().enumerate() {
                let key = |field: &str| format!("auth.clients[{i}].{field}");
                if client.client_id.trim().is_empty() {
                    problem(&key("client_id"), "must not be empty");
                }
                if client.client_secret_env.is_some() && client.client_secret_file.is_some() {
                    problem(
                        &key("client_secret_env"),
                        "give client_secret_env or client_secret_file, not both",
                    );
                }
                if client.redirect_uris.is_empty() && client.signs_in() {
                    problem(&key("redirect_uris"), "at least one redirect URI is required");
                }
                let keys = match client.keys() {
                    Ok(keys) => keys.is_some(),
                    Err(e) => {
                        problem(&key("jwks"), &e);
                        true
                    }
                };
                if client.has_secret() && keys {
                    problem(
                        &key("jwks"),
                        "a client authenticates by a secret or by its keys (jwks, jwks_uri), not both",
                    );
                }
                if let Some(uri) = &client.jwks_uri
                    && url::Url::parse(uri).is_err()
                {
                    problem(&key("jwks_uri"), "is not a URL");
                }
                match client.grant_types() {
                    Err(e) => problem(&key("grant_types"), &e),
                    Ok(grants)
                        if grants.contains(&GrantType::ClientCredentials)
                            && !client.has_secret()
                            && !keys =>
                    {
                        problem(
                            &key("grant_types"),
                            "client_credentials needs client_secret_env, client_secret_file, jwks or jwks_uri",
                        );
                    }
                    Ok(_) => {}
                }
                if auth.clients[..i].iter().any(|other| other.client_id == client.client_id) {
                    problem(&key("client_id"), "another client has this id");
                }
            }
            let mut issuers = vec![config.public_url().trim_end_matches('/').to_owned()];
            let mut opaque = false;
            for (i, entry) in auth.accept.iter().enumerate() {
                let key = |field: &str| format!("auth.accept[{i}].{field}");
                match entry.kind() {
                    Err((field, message)) => problem(&key(field), message),
                    Ok(kind) => {
                        let urls = match kind {
                            AcceptKind::Jwt { jwks_uri, .. } => [("jwks_uri", jwks_uri)],
                            AcceptKind::Introspection { url, .. } => [("introspection_url", url)],
                        };
                        for (field, url) in urls {
                            if url::Url::parse(url).is_err() {
                                problem(&key(field), "is not a URL");
                            }
                        }
                    }
                }
                match &entry.issuer {
                    Some(issuer) if issuers.contains(issuer) => problem(
                        &key("issuer"),
                        "is accepted twice, or is this gateway's own (server.public_url)",
                    ),
                    Some(issuer) => issuers.push(issuer.clone()),
                    None if opaque => {
                        problem(&key("issuer"), "one entry only may take opaque tokens (no issuer)");
                    }
                    None => opaque = true,
                }
            }
            let redeemers: Vec<&str> = auth
                .clients
                .iter()
                .filter(|c| c.grant_types().is_ok_and(|g| g.contains(&GrantType::JwtBearer)))
                .map(|c| c.client_id.as_str())
                .collect();
            for (i, idp) in auth.enterprise_idps.iter().enumerate() {
                let key = |field: &str| format!("auth.enterprise_idps[{i}].{field}");
                if idp.issuer.trim().is_empty() {
                    problem(&key("issuer"), "must not be empty");
                } else if auth.enterprise_idps[..i].iter().any(|other| other.issuer == idp.issuer) {
                    problem(&key("issuer"), "another entry has this issuer");
                }
                if url::Url::parse(&idp.jwks_uri).is_err() {
                    problem(&key("jwks_uri"), "is not a URL");
                }
                for client in &idp.allowed_clients {
                    if !redeemers.contains(&client.as_str()) {
                        let message = format!(
                            "{client:?} is no [[auth.clients]] entry whose grant_types list {JWT_BEARER}"
                        );
                        problem(&key("allowed_clients"), &message);
                    }
                }
            }
            if !redeemers.is_empty() && auth.enterprise_idps.is_empty() {
                let i = auth.clients.iter().position(|c| c.client_id == redeemers[0]).unwrap_or(0);
                problem(
                    &format!("auth.clients[{i}].grant_types"),
                    "the jwt-bearer grant needs [[auth.enterprise_idps]]",
                );
            }
            if let Some(why) = unguarded_consent_off(auth) {
                problem("auth.consent", &why);
            }
        }
        AuthMode::Resource if !auth.accept.is_empty() => {
            problem("auth.accept", "applies only to mode = \"proxy\" (resource mode trusts [auth.resource])");
        }
        AuthMode::Resource if !auth.enterprise_idps.is_empty() => {
            problem(
                "auth.enterprise_idps",
                "applies only to mode = \"proxy\" (mcpgate's own authorization server)",
            );
        }
        AuthMode::Resource => match &auth.resource {
            None => problem(
                "auth.resource.jwks_uri",
                "is required in resource mode ([auth.resource] jwks_uri, issuer)",
            ),
            Some(resource) => {
                if url::Url::parse(&resource.jwks_uri).is_err() {
                    problem("auth.resource.jwks_uri", "is not a URL");
                }
                if resource.issuer.is_empty() {
                    problem("auth.resource.issuer", "must not be empty");
                }
            }
        },
    }
    let mut api_keys: Vec<ApiKey> = Vec::new();
    // The scopes anything offers: the routes' (auth.scopes by default) and those a policy rule
    // requires. Without any (resource mode may leave the vocabulary to its authorization
    // server), any.
    let routes = config.routes();
    let implications = config.scope_implications().unwrap_or_default();
    let policies: Vec<_> =
        routes.iter().filter_map(|r| r.policy.compile(implications.clone()).ok()).collect();
    let required = policies.iter().flat_map(|p| p.required_scopes()).map(str::to_owned);
    let vocabulary: Vec<String> = routes.iter().flat_map(|r| r.scopes.iter().cloned()).collect();
    let offered: Vec<String> = vocabulary.iter().cloned().chain(required).collect();
    for (i, entry) in config.auth.api_keys.iter().enumerate() {
        let key = |field: &str| format!("auth.api_keys[{i}].{field}");
        if let Some(unknown) = entry.scopes.iter().find(|s| !vocabulary.is_empty() && !offered.contains(s)) {
            let message = format!(
                "{unknown:?} is neither in auth.scopes (or a route's scopes) nor required by a policy rule"
            );
            problem(&key("scopes"), &message);
        }
        match entry.to_api_key() {
            Err((field, message)) => problem(&key(field), &message),
            // The library's rules (a name, distinct names and digests), on the keys so far.
            Ok(api_key) => {
                api_keys.push(api_key);
                if let Err(e) = ApiKeyVerifier::new(api_keys.clone()) {
                    let field = if matches!(e, ApiKeyError::DuplicateDigest(..)) { "digest" } else { "name" };
                    problem(&key(field), &e.to_string());
                    api_keys.pop();
                }
            }
        }
    }
    if let Err(e) = mcpgate::store::check_url(&config.store.url) {
        problem("store.url", &e.to_string());
    }
    if config.secrets.secret_env.is_empty() && config.secrets.secret_file.is_none() {
        problem("secrets.secret_env", "name the variable holding the root secret (or give secret_file)");
    }
    problems
}

/// The public URL is our issuer: https, or http on a loopback host; no query or fragment.
fn check_public_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must be https (http only on a loopback host)".into()),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(())
}

/// Why `consent = "off"` would let strangers get codes silently, if it would: anyone can
/// bring a client (open registration, or metadata documents) and its redirect URI may be
/// something other than a loopback listener.
fn unguarded_consent_off(auth: &AuthConfig) -> Option<String> {
    if auth.consent != ConsentMode::Off {
        return None;
    }
    let mut open = Vec::new();
    if auth.registration == Registration::Open {
        open.push("auth.registration is \"open\"");
    }
    if auth.client_metadata_documents.enabled {
        open.push("auth.client_metadata_documents.enabled is true");
    }
    let loopback_only = auth.allowed_redirect_uris.as_ref().is_some_and(|patterns| {
        patterns.iter().all(|p| {
            ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                .iter()
                .any(|prefix| p.starts_with(prefix))
        })
    });
    if open.is_empty() || loopback_only {
        return None;
    }
    Some(format!(
        "\"off\" skips the consent page while {} and auth.allowed_redirect_uris allows redirects \
         beyond loopback: anyone could get an authorization code for a signed-in user sent to \
         their own site. Set registration = \"off\" (with [[auth.clients]]) and disable metadata \
         documents, or limit allowed_redirect_uris to loopback, or ask for consent",
        open.join(" and ")
    ))
}

/// Paths the gateway serves itself, which no route may take.
const OWN_PATHS: [&str; 11] = [
    "/.well-known",
    "/authorize",
    "/consent",
    "/token",
    "/register",
    "/revoke",
    "/jwks.json",
    "/auth",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// Each route: its path, its upstream, and what it forwards.
fn validate_routes(config: &Config, problem: &mut impl FnMut(&str, &str)) {
    let routes = config.routes();
    if routes.is_empty() {
        problem("upstream", "give [upstream] or at least one [[routes]] entry");
    }
    for (i, route) in config.routes.iter().enumerate() {
        for name in route.unknown.keys() {
            problem(&format!("routes[{i}].{name}"), &format!("unknown field `{name}`"));
        }
    }
    for (i, route) in routes.iter().enumerate() {
        let path_key = match route.key.as_str() {
            "upstream" => "server.mcp_path".to_owned(),
            key => format!("{key}.path"),
        };
        let path = route.path;
        if route.key != "upstream" && !path.starts_with('/') {
            problem(&path_key, "must start with /");
        }
        let own = |p: &&str| path == *p || path.starts_with(&format!("{p}/"));
        if OWN_PATHS.iter().any(own) {
            problem(&path_key, "is a path the gateway serves itself");
        }
        if routes[..i].iter().any(|r| r.path.trim_end_matches('/') == path.trim_end_matches('/')) {
            problem(&path_key, "another route is served at this path");
        }
        validate_upstream(&route.key, route.upstream, config, problem);
        if route.is_public() {
            if route.upstream.forward_provider_token {
                problem(&format!("{}.forward_provider_token", route.key), "a public route has no user");
            }
            if route.upstream.token_exchange.is_some() {
                problem(&format!("{}.token_exchange", route.key), "a public route has no user");
            }
        }
        if route.rate_limit.per_second <= 0.0 || route.rate_limit.burst == 0 {
            problem(&format!("{}.rate_limit", route.key), "per_minute and burst must be at least 1");
        }
    }
    // The authorization server keeps one downstream token per grant: one downstream API.
    let mut exchanges = routes.iter().filter_map(|r| r.upstream.token_exchange.as_ref().map(|e| (r, e)));
    if let Some((_, first)) = exchanges.next() {
        for (route, _) in exchanges.filter(|(_, e)| *e != first) {
            problem(
                &format!("{}.token_exchange", route.key),
                "differs from another route's: one gateway exchanges for one downstream API",
            );
        }
    }
    let protected = routes.iter().filter(|r| !r.is_public()).count();
    if protected > 1
        && config.auth.mode == AuthMode::Resource
        && config.auth.resource.as_ref().is_some_and(|r| r.audience.is_some())
    {
        problem(
            "auth.resource.audience",
            "with several protected routes each route is its own audience (its URL): a fixed one \
             would let a token for one route pass at the others",
        );
    }
}

/// One route's upstream (`[upstream]` or a `[[routes]]` entry), its keys under `key`.
fn validate_upstream(
    key: &str,
    upstream: &super::schema::UpstreamConfig,
    config: &Config,
    problem: &mut impl FnMut(&str, &str),
) {
    let at = |field: &str| format!("{key}.{field}");
    match (&upstream.url, &upstream.command) {
        (Some(_), Some(_)) => problem(key, "give either url or command, not both"),
        (None, None) => {
            problem(key, "give url (a Streamable HTTP server) or command (a stdio server)");
        }
        (Some(url), None) => {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                problem(&at("url"), "must be an http or https URL");
            }
        }
        (None, Some(command)) => {
            if command.first().is_none_or(|program| program.trim().is_empty()) {
                problem(&at("command"), "must name a program: [\"program\", \"arg\", …]");
            }
        }
    }
    if upstream.per_session && upstream.command.is_none() {
        problem(&at("per_session"), "applies only to a stdio command");
    }
    if upstream.command.is_some() && upstream.forward_provider_token && !upstream.per_session {
        problem(
            &at("forward_provider_token"),
            "a stdio server gets the provider token in its environment, so it needs per_session = true",
        );
    }
    if let Some(exchange) = &upstream.token_exchange {
        if let Err((field, message)) = exchange.to_exchange(&config.auth.provider) {
            problem(&at(&format!("token_exchange.{field}")), &message);
        }
        if let Some(endpoint) = &exchange.endpoint
            && url::Url::parse(endpoint).is_err()
        {
            problem(&at("token_exchange.endpoint"), "is not a URL");
        }
        if config.auth.mode != AuthMode::Proxy {
            problem(
                &at("token_exchange"),
                "needs mode = \"proxy\" (only mcpgate's own grants hold provider tokens)",
            );
        }
        if upstream.command.is_some() && !upstream.per_session {
            problem(
                &at("token_exchange"),
                "a stdio server gets the downstream token in its environment, so it needs per_session = true",
            );
        }
    }
    if upstream.max_children == 0 {
        problem(&at("max_children"), "must be at least 1");
    }
}
