//! Redis store URLs: one server, `redis://[user:password@]HOST:PORT/DB[?prefix=NAME:]` (or
//! `rediss://` over TLS), or a cluster, `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…]
//! [?prefix=NAME:]` (`rediss+cluster://` over TLS) naming some of its nodes — the client learns
//! the rest. Parsed whole before anything connects, so a bad URL is a configuration error. (The
//! TLS forms parse, but [`check_url`](super::check_url) refuses them until the client is built
//! with TLS.)

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
        let (prefix, rest) =
            split_prefix(parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())));
        parsed.set_query(None);
        if !rest.is_empty() {
            parsed.query_pairs_mut().extend_pairs(rest);
        }
        Ok(Self { target: Target::Server(parsed.into()), prefix })
    }

    /// `rest` of a cluster URL: `[user:password@]HOST:PORT[,HOST:PORT…][?prefix=NAME:]`.
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
        let (prefix, others) = split_prefix(pairs);
        if let Some((key, _)) = others.first() {
            return Err(bad(format!("unknown cluster URL parameter {key:?} (only prefix)")));
        }
        // The prefix is part of every key; a brace in it would make it the hash tag, putting
        // every record in one slot.
        if prefix.contains(['{', '}']) {
            return Err(bad("a cluster's prefix may not contain { or }"));
        }
        Ok(Self { target: Target::Cluster(nodes), prefix })
    }
}

/// Our `prefix` parameter (or the default), and the other parameters.
fn split_prefix(pairs: impl Iterator<Item = (String, String)>) -> (String, Vec<(String, String)>) {
    let mut prefix = DEFAULT_PREFIX.to_owned();
    let mut rest = Vec::new();
    for (key, value) in pairs {
        if key == "prefix" {
            prefix = value;
        } else {
            rest.push((key, value));
        }
    }
    (prefix, rest)
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
        let tls = RedisUrl::parse("rediss+cluster://user:secret@redis-1.example:6380").unwrap();
        assert_eq!(tls.target, Target::Cluster(vec!["rediss://user:secret@redis-1.example:6380".into()]));
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
        ] {
            assert!(matches!(RedisUrl::parse(url), Err(StoreError::Config(_))), "{url}");
        }
    }
}
