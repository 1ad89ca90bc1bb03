//! Redis store URLs: one server, `redis://[user:password@]HOST:PORT/DB[?prefix=NAME:]` (or
//! `rediss://` over TLS), or a cluster, `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…]
//! [?prefix=NAME:]` (`rediss+cluster://` over TLS) naming some of its nodes — the client learns
//! the rest. Over TLS, `ca=PATH` names the PEM file of the certificate authority to trust in
//! place of the system's. Parsed whole before anything connects, so a bad URL is a configuration
//! error.

use super::StoreError;

/// The key prefix when the URL names none.
const DEFAULT_PREFIX: &str = "mcpgate:";

/// Where the records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server, its URL without our `prefix` parameter.
    Server(String),
    /// A cluster: a URL per seed node.
    Cluster(Vec<String>),
}

/// A parsed Redis store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisUrl {
    pub target: Target,
    /// Put before every key, so deployments can share the servers.
    pub prefix: String,
    /// Over TLS: the certificate authority to trust, in place of the system's.
    pub ca: Option<std::path::PathBuf>,
}

fn bad(why: impl std::fmt::Display) -> StoreError {
    StoreError::Config(format!("redis URL: {why}"))
}

impl RedisUrl {
    /// Parses `url`.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        for (scheme, node_scheme) in [("redis+cluster://", "redis"), ("rediss+cluster://", "rediss")] {
            if let Some(rest) = url.strip_prefix(scheme) {
                return Self::cluster(rest, node_scheme);
            }
        }
        let mut parsed = url::Url::parse(url).map_err(bad)?;
        let (ours, rest) = split_ours(parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())));
        parsed.set_query(None);
        if !rest.is_empty() {
            parsed.query_pairs_mut().extend_pairs(rest);
        }
        let ca = ours.ca(parsed.scheme() == "rediss")?;
        Ok(Self { target: Target::Server(parsed.into()), prefix: ours.prefix, ca })
    }

    /// `rest` of a cluster URL: `[user:password@]HOST:PORT[,HOST:PORT…][?prefix=NAME:][&ca=PATH]`.
    fn cluster(rest: &str, node_scheme: &str) -> Result<Self, StoreError> {
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        if authority.contains('/') {
            return Err(bad("a cluster has no databases: no /DB after the nodes"));
        }
        let (credentials, nodes) = match authority.rsplit_once('@') {
            Some((credentials, nodes)) => (format!("{credentials}@"), nodes),
            None => (String::new(), authority),
        };
        let nodes: Vec<String> = nodes
            .split(',')
            .map(|node| {
                let node = node.trim();
                let parsed = url::Url::parse(&format!("{node_scheme}://{node}")).map_err(bad)?;
                if node.is_empty() || parsed.port().is_none() || parsed.host_str().is_none() {
                    return Err(bad(format!("cluster node {node:?} must be HOST:PORT")));
                }
                Ok(format!("{node_scheme}://{credentials}{node}"))
            })
            .collect::<Result<_, _>>()?;
        let pairs =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
        let (ours, others) = split_ours(pairs);
        if let Some((key, _)) = others.first() {
            return Err(bad(format!("unknown cluster URL parameter {key:?} (only prefix and ca)")));
        }
        // The prefix is part of every key; a brace in it would make it the hash tag, putting
        // every record in one slot.
        if ours.prefix.contains(['{', '}']) {
            return Err(bad("a cluster's prefix may not contain { or }"));
        }
        let ca = ours.ca(node_scheme == "rediss")?;
        Ok(Self { target: Target::Cluster(nodes), prefix: ours.prefix, ca })
    }
}

/// The parameters that are ours, not the Redis client's.
struct Ours {
    prefix: String,
    ca: Option<String>,
}

impl Ours {
    /// `ca`, which only a TLS URL may have.
    fn ca(&self, tls: bool) -> Result<Option<std::path::PathBuf>, StoreError> {
        match (&self.ca, tls) {
            (Some(_), false) => Err(bad("ca applies to TLS only (rediss://, rediss+cluster://)")),
            (Some(path), true) if path.is_empty() => Err(bad("ca needs the path of a PEM file")),
            (ca, _) => Ok(ca.as_ref().map(std::path::PathBuf::from)),
        }
    }
}

/// Our `prefix` (or the default) and `ca` parameters, and the other ones.
fn split_ours(pairs: impl Iterator<Item = (String, String)>) -> (Ours, Vec<(String, String)>) {
    let mut ours = Ours { prefix: DEFAULT_PREFIX.to_owned(), ca: None };
    let mut rest = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "prefix" => ours.prefix = value,
            "ca" => ours.ca = Some(value),
            _ => rest.push((key, value)),
        }
    }
    (ours, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_clusters_are_parsed_with_their_prefix() {
        let one = RedisUrl::parse("redis://u:p@127.0.0.1:6379/2?prefix=team-a:&protocol=resp3").unwrap();
        assert_eq!(one.target, Target::Server("redis://u:p@127.0.0.1:6379/2?protocol=resp3".into()));
        assert_eq!(one.prefix, "team-a:");
        assert_eq!(RedisUrl::parse("redis://127.0.0.1:6379/0").unwrap().prefix, "mcpgate:");

        let cluster = RedisUrl::parse("redis+cluster://127.0.0.1:7000, 127.0.0.1:7001?prefix=gw:").unwrap();
        assert_eq!(
            cluster.target,
            Target::Cluster(vec!["redis://127.0.0.1:7000".into(), "redis://127.0.0.1:7001".into()])
        );
        assert_eq!(cluster.prefix, "gw:");
        let tls =
            RedisUrl::parse("rediss+cluster://user:secret@redis-1.example:6380?ca=/etc/ca.pem").unwrap();
        assert_eq!(tls.target, Target::Cluster(vec!["rediss://user:secret@redis-1.example:6380".into()]));
        assert_eq!(tls.ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        let one = RedisUrl::parse("rediss://127.0.0.1:6380/0?ca=ca.pem").unwrap();
        assert_eq!(
            (one.target, one.ca),
            (Target::Server("rediss://127.0.0.1:6380/0".into()), Some("ca.pem".into()))
        );
    }

    #[test]
    fn bad_cluster_urls_are_configuration_errors() {
        for url in [
            "redis+cluster://",
            "redis+cluster://127.0.0.1",
            "redis+cluster://127.0.0.1:7000,",
            "redis+cluster://127.0.0.1:7000/0",
            "redis+cluster://127.0.0.1:7000?db=1",
            "redis+cluster://127.0.0.1:7000?prefix=a{b}:",
            "redis://127.0.0.1:6379/0?ca=ca.pem",
            "rediss://127.0.0.1:6379/0?ca=",
        ] {
            assert!(matches!(RedisUrl::parse(url), Err(StoreError::Config(_))), "{url}");
        }
    }
}
