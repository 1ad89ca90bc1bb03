//! The open-files limit, raised at start: every proxied connection holds two sockets (the
//! client's and the upstream's), so ten thousand idle event streams need far more than the
//! usual soft limit of 1024. The soft limit goes up to the hard one, which only the operator
//! (or the service manager) can raise.

/// Raises the soft limit on open files to the hard limit; the limit in force afterwards
/// (`None`: unlimited, or not a Unix system).
pub fn raise() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, soft = ?limit.current, hard = ?limit.maximum, "cannot raise the open-files limit");
                return limit.current;
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

#[cfg(all(test, unix))]
mod tests {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        // From below, as a process started under a low soft limit would be.
        let hard = getrlimit(Resource::Nofile).maximum;
        setrlimit(Resource::Nofile, Rlimit { current: Some(256), maximum: hard }).unwrap();
        assert_eq!(getrlimit(Resource::Nofile).current, Some(256));
        assert_eq!(super::raise(), hard);
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
    }
}
