//! The gateway's configuration: one TOML file (documented key by key in
//! `mcpgate.example.toml`), every key overridable by an environment variable named after its
//! path (`MCPGATE_SERVER__LISTEN` for `server.listen`), secrets only by reference (`*_env`,
//! `*_file`).
//!
//! Every problem names its key and where it came from — the file's line, or the environment
//! variable — so `mcpgate check` can point at it.
//!
//! [`schema`] is the file's shape, [`sources`] reads it (with the environment's overrides) and
//! [`validation`] checks what the types cannot say.

mod policy;
mod routes;
mod schema;
mod sources;
mod validation;

pub use routes::Route;
pub use schema::*;
pub use sources::{Origin, Problem, Source};

#[cfg(test)]
mod tests {
    use mcpgate::authz::{AllowedUsers, ClientKeys, ConsentMode};

    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:9000"

[upstream]
url = "http://127.0.0.1:3000/mcp"

[auth]
client_id = "abc"
client_secret_env = "IDP_SECRET"
scopes = ["mcp:read"]
consent = "remember"

[auth.oidc]
discovery_url = "https://accounts.example.com/.well-known/openid-configuration"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        Source::new(text.to_owned(), env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).load()
    }

    fn only_problem(text: &str, env: &[(&str, &str)]) -> Problem {
        let problems = load(text, env).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.into_iter().next().unwrap()
    }

    #[test]
    fn the_annotated_example_file_is_a_valid_configuration() {
        let example = include_str!("../../../mcpgate.example.toml");
        let config = load(example, &[]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.auth.client_secret_env.as_deref(), Some("MCPGATE_IDP_SECRET"));
        assert_eq!(config.public_url(), "http://127.0.0.1:8000");
    }

    #[test]
    fn a_good_file_loads_with_defaults() {
        let config = load(GOOD, &[]).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.server.mcp_path, "/mcp");
        assert_eq!(config.public_url(), "http://127.0.0.1:9000");
        assert_eq!(config.auth.consent, ConsentMode::Remember);
        assert_eq!(config.store.url, "sqlite://.mcpgate/mcpgate.db");
        assert_eq!(config.secrets.secret_env, "MCPGATE_SECRET");
        assert!(
            config.upstream.as_ref().unwrap().forward_identity
                && !config.upstream.as_ref().unwrap().forward_provider_token
        );
    }

    #[test]
    fn unknown_keys_wrong_types_and_missing_keys_name_the_key_and_line() {
        let unknown =
            only_problem(&GOOD.replace("consent = \"remember\"", "consent = \"remember\"\ncolour = 1"), &[]);
        assert_eq!((unknown.key.as_str(), &unknown.origin), ("auth.colour", &Origin::Line(13)), "{unknown}");

        let wrong = only_problem(&GOOD.replace("scopes = [\"mcp:read\"]", "scopes = \"mcp:read\""), &[]);
        assert_eq!((wrong.key.as_str(), &wrong.origin), ("auth.scopes", &Origin::Line(11)), "{wrong}");
        assert!(wrong.message.contains("sequence") || wrong.message.contains("array"), "{wrong}");

        let bad_mode = only_problem(&GOOD.replace("\"remember\"", "\"sometimes\""), &[]);
        assert_eq!(bad_mode.key, "auth.consent");
        assert!(bad_mode.message.contains("always, remember or off"), "{bad_mode}");

        let missing = only_problem("[auth]\nclient_id = \"x\"\n", &[]);
        assert_eq!(missing.key, "upstream", "{missing}");
        assert!(missing.message.contains("the [upstream] section is missing"), "{missing}");
        let empty = Source::new(String::new(), std::iter::empty()).load().unwrap_err();
        let keys: Vec<&str> = empty.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["upstream", "auth"], "an empty file names both sections");
        let missing_field = only_problem(
            "[upstream]\nurl = \"http://127.0.0.1:1/mcp\"\n[auth]\nmode = \"resource\"\n[auth.resource]\nissuer = \"x\"\n",
            &[],
        );
        assert_eq!(missing_field.key, "auth.resource.jwks_uri", "{missing_field}");

        let syntax = only_problem("[server\nlisten = 1", &[]);
        assert_eq!(syntax.origin, Origin::Line(1), "{syntax}");
    }

    #[test]
    fn a_provider_s_section_and_the_allow_list_are_read_and_checked() {
        let github = GOOD.replace(
            "consent = \"remember\"\n\n[auth.oidc]\ndiscovery_url = \"https://accounts.example.com/.well-known/openid-configuration\"",
            "provider = \"github\"\n\n[auth.github]\nbase_url = \"https://ghe.example.com\"\n\n\
             [auth.allowed_users]\nemail_domains = [\"example.com\"]\ngroups = [\"acme\"]",
        );
        let config = load(&github, &[]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.auth.github.unwrap().base_url.as_deref(), Some("https://ghe.example.com"));
        let allowed = AllowedUsers::from(&config.auth.allowed_users);
        assert_eq!(
            (allowed.email_domains, allowed.groups),
            (vec!["example.com".into()], vec!["acme".into()])
        );

        let problems = load(&GOOD.replace("consent", "provider = \"gitbucket\"\nconsent"), &[]).unwrap_err();
        let unknown = problems.iter().find(|p| p.key == "auth.provider").expect("the provider named");
        assert!(unknown.message.contains("github"), "the known ones are listed: {unknown}");
        let stray = load(&github.replace("provider = \"github\"", "provider = \"oidc\""), &[]).unwrap_err();
        let keys: Vec<&str> = stray.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["auth.oidc.discovery_url", "auth.github"]);
        let misplaced =
            load(&format!("{GOOD}\n[auth.github]\nbase_url = \"https://ghe.example.com\"\n"), &[])
                .unwrap_err();
        assert!(misplaced.iter().any(|p| p.key == "auth.github"), "{misplaced:?}");
        let bad_url = only_problem(&github.replace("https://ghe.example.com", "ghe.example.com"), &[]);
        assert_eq!(bad_url.key, "auth.github.base_url");
    }

    #[test]
    fn inline_secrets_are_refused_with_the_way_to_give_them() {
        let inline = only_problem(
            &GOOD.replace("client_secret_env = \"IDP_SECRET\"", "client_secret = \"hunter2\""),
            &[],
        );
        assert_eq!(inline.key, "auth.client_secret");
        assert!(inline.message.contains("_env"), "{inline}");
        assert!(!inline.to_string().contains("hunter2"), "the secret is not repeated");
    }

    #[test]
    fn environment_variables_override_any_key_and_are_named_in_problems() {
        let config = load(
            GOOD,
            &[
                ("MCPGATE_SERVER__LISTEN", "0.0.0.0:8443"),
                ("MCPGATE_AUTH__SCOPES", "[\"a\", \"b\"]"),
                ("MCPGATE_UPSTREAM__FORWARD_PROVIDER_TOKEN", "true"),
                (
                    "MCPGATE_AUTH__OIDC__DISCOVERY_URL",
                    "https://other.example/.well-known/openid-configuration",
                ),
                ("MCPGATE_SECRET", "not-an-override"),
            ],
        )
        .unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(config.auth.scopes, ["a", "b"]);
        assert!(config.upstream.unwrap().forward_provider_token);
        assert!(config.auth.oidc.unwrap().discovery_url.starts_with("https://other.example"));

        let bad = only_problem(GOOD, &[("MCPGATE_SERVER__LISTEN", "not an address")]);
        assert_eq!(
            (bad.key.as_str(), &bad.origin),
            ("server.listen", &Origin::Env("MCPGATE_SERVER__LISTEN".into()))
        );
        let unknown = only_problem(GOOD, &[("MCPGATE_AUTH__COLOUR", "x")]);
        assert_eq!(unknown.origin, Origin::Env("MCPGATE_AUTH__COLOUR".into()), "{unknown}");
    }

    #[test]
    fn a_machine_client_needs_a_secret_and_no_redirect_uri() {
        let machine = |extra: &str| {
            format!(
                "{GOOD}\n[[auth.clients]]\nclient_id = \"ci\"\ngrant_types = [\"client_credentials\"]\n{extra}"
            )
        };
        let config = load(&machine("client_secret_env = \"CI_SECRET\""), &[]).unwrap();
        assert!(!config.auth.clients[0].signs_in());
        let problem = only_problem(&machine(""), &[]);
        assert_eq!(problem.key, "auth.clients[0].grant_types");
        assert!(problem.message.contains("needs client_secret_env"), "{problem:?}");
        let refresh = machine("client_secret_env = \"CI_SECRET\"")
            .replace("[\"client_credentials\"]", "[\"client_credentials\", \"refresh_token\"]");
        assert_eq!(only_problem(&refresh, &[]).key, "auth.clients[0].grant_types");
        // A client people sign in through still needs its redirect URIs.
        let person = format!("{GOOD}\n[[auth.clients]]\nclient_id = \"desk\"\n");
        assert_eq!(only_problem(&person, &[]).key, "auth.clients[0].redirect_uris");
    }

    #[test]
    fn a_machine_client_may_have_keys_instead_of_a_secret() {
        let machine = |extra: &str| {
            format!(
                "{GOOD}\n[[auth.clients]]\nclient_id = \"ci\"\ngrant_types = [\"client_credentials\"]\n{extra}"
            )
        };
        // Keys as a TOML table, as JSON text, or at a URL.
        let table = "jwks = { keys = [{ kty = \"OKP\", crv = \"Ed25519\", x = \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\" }] }";
        let text = r#"jwks = '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}'"#;
        for keys in [table, text] {
            let config = load(&machine(keys), &[]).unwrap();
            let Ok(Some(ClientKeys::Jwks(document))) = config.auth.clients[0].keys() else {
                panic!("{keys}")
            };
            assert_eq!(document["keys"][0]["crv"], "Ed25519");
        }
        let config = load(&machine("jwks_uri = \"https://ci.example/jwks.json\""), &[]).unwrap();
        assert!(matches!(config.auth.clients[0].keys(), Ok(Some(ClientKeys::JwksUri(_)))));
        // One way to authenticate, keys given once, and keys that are JSON.
        let cases = [
            (
                "jwks_uri = \"https://ci.example/k\"\nclient_secret_env = \"S\"",
                "auth.clients[0].jwks",
                "not both",
            ),
            ("jwks_uri = \"https://ci.example/k\"\njwks = '{}'", "auth.clients[0].jwks", "not both"),
            ("jwks = 'not json'", "auth.clients[0].jwks", "not a JWKS document"),
            ("jwks_uri = \"not a url\"", "auth.clients[0].jwks_uri", "is not a URL"),
        ];
        for (extra, key, message) in cases {
            let problem = only_problem(&machine(extra), &[]);
            assert_eq!(problem.key, key, "{extra}");
            assert!(problem.message.contains(message), "{extra}: {problem:?}");
        }
    }

    #[test]
    fn api_keys_are_read_by_digest_with_their_expiry_and_checked() {
        let (_, digest) = mcpgate::verify::new_api_key();
        let (_, other) = mcpgate::verify::new_api_key();
        let entry = |name: &str, digest: &str, extra: &str| {
            format!(
                "[[auth.api_keys]]\nname = \"{name}\"\ndigest = \"{digest}\"\nscopes = [\"mcp:read\"]\n{extra}\n"
            )
        };
        let text = format!(
            "{GOOD}\n{}{}{}",
            entry("ci", &digest.to_string(), ""),
            entry("by-date", &other.to_string(), "expires = 2027-01-31"),
            entry(
                "by-time",
                &mcpgate::verify::new_api_key().1.to_string(),
                "expires = 2027-01-31T18:00:00+01:00"
            ),
        );
        let config = load(&text, &[]).unwrap();
        let keys: Vec<_> = config.auth.api_keys.iter().map(|k| k.to_api_key().unwrap()).collect();
        assert_eq!((keys[0].name.as_str(), &keys[0].digest, keys[0].expires_at), ("ci", &digest, None));
        // 2027-01-31 is 20,849 days after 1970-01-01.
        assert_eq!(keys[1].expires_at, Some(20_849 * 86_400));
        assert_eq!(keys[2].expires_at, Some(20_849 * 86_400 + 17 * 3600));
        let d = digest.to_string();
        let cases = [
            (entry("ci", "sha256:short", ""), "auth.api_keys[0].digest"),
            (entry("ci", &d, "expires = 2027-01-31T18:00:00"), "auth.api_keys[0].expires"),
            (entry("has space", &d, ""), "auth.api_keys[0].name"),
            (
                format!("{}{}", entry("ci", &d, ""), entry("ci", &other.to_string(), "")),
                "auth.api_keys[1].name",
            ),
            (format!("{}{}", entry("a", &d, ""), entry("b", &d, "")), "auth.api_keys[1].digest"),
            (entry("ci", &d, "").replace("mcp:read", "mcp:raed"), "auth.api_keys[0].scopes"),
        ];
        for (keys, key) in cases {
            assert_eq!(only_problem(&format!("{GOOD}\n{keys}"), &[]).key, key, "{keys}");
        }
    }

    #[test]
    fn other_issuers_are_each_accepted_once_by_keys_or_introspection() {
        let jwt = "[[auth.accept]]\nissuer = \"https://corp.example\"\njwks_uri = \"https://corp.example/keys\"\naudience = \"api://mcp\"\n";
        let opaque = "[[auth.accept]]\nintrospection_url = \"https://corp.example/introspect\"\nclient_id = \"gw\"\nclient_secret_env = \"S\"\n";
        let config = load(&format!("{GOOD}\n{jwt}\n{opaque}"), &[]).unwrap();
        assert!(matches!(
            config.auth.accept[0].kind(),
            Ok(AcceptKind::Jwt { issuer: "https://corp.example", .. })
        ));
        assert!(matches!(
            config.auth.accept[1].kind(),
            Ok(AcceptKind::Introspection { client_id: "gw", .. })
        ));
        let cases = [
            (format!("{jwt}\n{jwt}"), "auth.accept[1].issuer"),
            (format!("{opaque}\n{opaque}"), "auth.accept[1].issuer"),
            (jwt.replace("audience = \"api://mcp\"\n", ""), "auth.accept[0].audience"),
            (jwt.replace("issuer = \"https://corp.example\"\n", ""), "auth.accept[0].issuer"),
            (format!("{jwt}introspection_url = \"https://x\"\n"), "auth.accept[0].jwks_uri"),
            (opaque.replace("client_secret_env = \"S\"\n", ""), "auth.accept[0].client_secret_env"),
            (opaque.replace("client_id = \"gw\"\n", ""), "auth.accept[0].client_id"),
            (jwt.replace("https://corp.example/keys", "not a url"), "auth.accept[0].jwks_uri"),
        ];
        for (accept, key) in cases {
            assert_eq!(only_problem(&format!("{GOOD}\n{accept}"), &[]).key, key, "{accept}");
        }
    }

    #[test]
    fn enterprise_idps_need_clients_of_the_grant_and_the_grant_an_idp() {
        let agent = "[[auth.clients]]\nclient_id = \"agent\"\nclient_secret_env = \"S\"\ngrant_types = [\"urn:ietf:params:oauth:grant-type:jwt-bearer\"]\n";
        let idp = "[[auth.enterprise_idps]]\nissuer = \"https://login.corp.example\"\njwks_uri = \"https://login.corp.example/keys\"\nallowed_clients = [\"agent\"]\n";
        let config = load(&format!("{GOOD}\n{agent}\n{idp}"), &[]).unwrap();
        assert!(!config.auth.clients[0].signs_in(), "no redirect URIs needed");
        assert_eq!(
            mcpgate::authz::EnterpriseIdp::from(&config.auth.enterprise_idps[0]).allowed_clients,
            ["agent"]
        );
        let cases = [
            (agent.to_owned(), "auth.clients[0].grant_types"),
            (idp.to_owned(), "auth.enterprise_idps[0].allowed_clients"),
            (format!("{agent}\n{idp}\n{idp}"), "auth.enterprise_idps[1].issuer"),
            (
                format!("{agent}\n{}", idp.replace("https://login.corp.example/keys", "keys")),
                "auth.enterprise_idps[0].jwks_uri",
            ),
        ];
        for (extra, key) in cases {
            assert_eq!(only_problem(&format!("{GOOD}\n{extra}"), &[]).key, key, "{extra}");
        }
    }

    #[test]
    fn a_token_exchange_names_its_api_and_its_flow_follows_the_provider() {
        use mcpgate::upstream::ExchangeFlow;
        let with = |exchange: &str| format!("{GOOD}\n[upstream.token_exchange]\n{exchange}\n");
        let config = load(&with("audience = \"reports-api\""), &[]).unwrap();
        let exchange = config
            .upstream
            .as_ref()
            .unwrap()
            .token_exchange
            .as_ref()
            .unwrap()
            .to_exchange("keycloak")
            .unwrap();
        assert_eq!(
            (exchange.flow, exchange.audience.as_deref()),
            (ExchangeFlow::TokenExchange, Some("reports-api"))
        );
        let config = load(&with("scope = \"api://reports/.default\""), &[]).unwrap();
        let exchange =
            config.upstream.as_ref().unwrap().token_exchange.as_ref().unwrap().to_exchange("azure").unwrap();
        assert_eq!(exchange.flow, ExchangeFlow::OnBehalfOf, "Entra's own grant");
        let cases = [
            ("", "upstream.token_exchange.audience"),
            ("audience = \"a\"\nflow = \"magic\"", "upstream.token_exchange.flow"),
            ("audience = \"a\"\nflow = \"on_behalf_of\"", "upstream.token_exchange.scope"),
            ("audience = \"a\"\nendpoint = \"not a url\"", "upstream.token_exchange.endpoint"),
        ];
        for (exchange, key) in cases {
            assert_eq!(only_problem(&with(exchange), &[]).key, key, "{exchange}");
        }
    }

    #[test]
    fn routes_each_have_their_upstream_scopes_and_policy_and_upstream_is_one_of_them() {
        let text = r#"
[[routes]]
path = "/search/mcp"
command = ["search-server", "--stdio"]
per_session = true
scopes = ["search:read"]
name = "Search"

[routes.policy]
default = "deny"
[[routes.policy.rules]]
tools = ["query"]

[[routes]]
path = "/public/mcp"
url = "http://127.0.0.1:3002/mcp"
auth = "none"
rate_limit = { per_minute = 60, burst = 5 }
"#;
        let config = load(&format!("{GOOD}\n{text}"), &[]).unwrap_or_else(|p| panic!("{p:?}"));
        let routes = config.routes();
        let summary: Vec<_> = routes.iter().map(|r| (r.key.as_str(), r.path, r.is_public())).collect();
        assert_eq!(
            summary,
            [
                ("upstream", "/mcp", false),
                ("routes[0]", "/search/mcp", false),
                ("routes[1]", "/public/mcp", true)
            ]
        );
        assert_eq!(routes[0].scopes, ["mcp:read"], "[upstream] has auth.scopes");
        assert_eq!(routes[1].scopes, ["search:read"]);
        assert_eq!(routes[2].scopes, ["mcp:read"], "a route without scopes has auth.scopes");
        assert!(routes[1].upstream.per_session && routes[1].name == Some("Search"));
        assert_eq!(routes[1].policy.rules.len(), 1, "its own policy");
        assert!(routes[0].policy.rules.is_empty(), "the top-level one");
        assert_eq!(routes[2].rate_limit, mcpgate::authz::RateLimit::per_minute(60, 5));

        // Without [upstream], the routes are all there is.
        let only = GOOD.replace("[upstream]\nurl = \"http://127.0.0.1:3000/mcp\"\n", "");
        let config = load(&format!("{only}\n{text}"), &[]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.routes().len(), 2);
    }

    #[test]
    fn the_readme_s_several_servers_example_is_valid() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Several MCP servers").unwrap()..];
        let block = &section[section.find("```toml\n").unwrap() + 8..];
        let block = &block[..block.find("```").unwrap()];
        let only_auth = GOOD.replace("[upstream]\nurl = \"http://127.0.0.1:3000/mcp\"\n", "");
        let config = load(&format!("{only_auth}\n{block}"), &[]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.routes().len(), 3);
    }

    #[test]
    fn route_problems_are_reported_at_the_route() {
        let route = |extra: &str| {
            format!(
                "{GOOD}\n[[routes]]\npath = \"/search/mcp\"\nurl = \"http://127.0.0.1:3001/mcp\"\n{extra}\n"
            )
        };
        let cases = [
            (route("colour = 1"), "routes[0].colour"),
            (route("").replace("/search/mcp", "/mcp"), "routes[0].path"),
            (route("").replace("/search/mcp", "/token"), "routes[0].path"),
            (route("").replace("/search/mcp", "/.well-known/x"), "routes[0].path"),
            (route("").replace("/search/mcp", "/metrics"), "routes[0].path"),
            (route("").replace("/search/mcp", "search"), "routes[0].path"),
            (route("command = [\"x\"]"), "routes[0]"),
            (route("per_session = true"), "routes[0].per_session"),
            (route("auth = \"none\"\nforward_provider_token = true"), "routes[0].forward_provider_token"),
            (route("auth = \"maybe\""), "routes[0].auth"),
            (route("rate_limit = { per_minute = 0, burst = 1 }"), "routes[0].rate_limit"),
            (route("[routes.policy]\n[[routes.policy.rules]]\ntoolz = [\"x\"]"), "routes[0].policy.rules"),
        ];
        for (text, key) in cases {
            let problems = load(&text, &[]).unwrap_err();
            assert!(problems.iter().any(|p| p.key.starts_with(key)), "{key}: {problems:?}");
        }
        let resource = "[upstream]\nurl = \"http://127.0.0.1:3000/mcp\"\n[auth]\nmode = \"resource\"\n\
            [auth.resource]\njwks_uri = \"https://as.example/jwks\"\nissuer = \"https://as.example\"\naudience = \"api://mcp\"\n\
            [[routes]]\npath = \"/b/mcp\"\nurl = \"http://127.0.0.1:3001/mcp\"\n";
        assert_eq!(only_problem(resource, &[]).key, "auth.resource.audience");
        assert!(
            load(&resource.replace("/b/mcp\"\n", "/b/mcp\"\nauth = \"none\"\n"), &[]).is_ok(),
            "one protected"
        );
        let two_apis = format!(
            "{GOOD}\n[upstream.token_exchange]\naudience = \"a\"\n\n[[routes]]\npath = \"/b/mcp\"\nurl = \"http://127.0.0.1:3001/mcp\"\n\
             [routes.token_exchange]\naudience = \"b\"\n"
        );
        assert_eq!(only_problem(&two_apis, &[]).key, "routes[0].token_exchange");
    }

    #[test]
    fn store_urls_are_checked_without_connecting() {
        let with = |url: &str| format!("{GOOD}\n[store]\nurl = \"{url}\"\n");
        for good in [
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix=gw:",
            "redis://127.0.0.1:6379/0",
            "rediss://127.0.0.1:6380/0?ca=/etc/mcpgate/redis-ca.pem",
        ] {
            assert!(load(&with(good), &[]).is_ok(), "{good}");
        }
        for bad in [
            "redis+cluster://127.0.0.1",
            "redis+cluster://127.0.0.1:7000/0",
            "sqlite://",
            "redis://127.0.0.1:6379/0?ca=/etc/ca.pem",
        ] {
            assert_eq!(only_problem(&with(bad), &[]).key, "store.url", "{bad}");
        }
    }

    #[test]
    fn semantic_problems_are_all_reported_at_their_keys() {
        let text = r#"
[server]
public_url = "http://mcp.example.com"
mcp_path = "mcp"

[upstream]
url = "http://127.0.0.1:3000/mcp"
command = ["server"]

[auth]
provider = "oidc"

[store]
url = "postgres://db"
"#;
        let problems = load(text, &[]).unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.mcp_path",
                "server.public_url",
                "upstream",
                "auth.client_id",
                "auth.client_secret_env",
                "auth.oidc.discovery_url",
                "store.url"
            ],
            "{problems:?}"
        );
        assert_eq!(problems[1].origin, Origin::Line(3));
        assert_eq!(problems[6].origin, Origin::Line(14));
    }
}
