//! How the commands fail: the exit statuses, and why the gateway could not start — shared by
//! `serve`, `check` and the provider set-up, so that none of them depends on another for it.

/// Bad configuration.
pub const BAD_CONFIG: u8 = 2;
/// A runtime failure (something could not be reached).
pub const RUNTIME_FAILURE: u8 = 1;

/// Why the gateway could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The configuration cannot work (exit 2).
    #[error("{key}: {message}")]
    Config { key: std::borrow::Cow<'static, str>, message: String },
    /// Something could not be reached or started (exit 1).
    #[error("{0}")]
    Runtime(String),
    /// The identity provider could not be reached (its discovery): `serve` starts anyway and
    /// retries; `check` reports it (exit 1).
    #[error("{0}")]
    ProviderUnavailable(String),
}

/// A configuration problem at `key`.
pub(crate) fn config_error(
    key: impl Into<std::borrow::Cow<'static, str>>,
    message: impl std::fmt::Display,
) -> ServeError {
    ServeError::Config { key: key.into(), message: message.to_string() }
}
