//! Which protected resource a token is for (RFC 8707): every token is bound to one of the
//! server's resources — the one the client names, or the only one there is. With several, a
//! client that names none is refused rather than given a token for a guess.

use super::{Inner, SettingsError};
use crate::error::{ErrorCode, OAuthError};

/// A resource URL in canonical form: a lone trailing slash dropped, as the MCP specification's
/// canonical server URI has it. Every comparison of resources goes through it.
pub(crate) fn canonical_resource(resource: &str) -> &str {
    resource.strip_suffix('/').unwrap_or(resource)
}

/// The canonical forms of `resources`, or why they are unusable.
pub(crate) fn canonical(resources: &[String]) -> Result<Vec<String>, SettingsError> {
    if resources.is_empty() {
        return Err(SettingsError::BadResource(String::new()));
    }
    resources
        .iter()
        .map(|resource| {
            let url = url::Url::parse(resource).map_err(|_| SettingsError::BadResource(resource.clone()))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some()
            {
                return Err(SettingsError::BadResource(resource.clone()));
            }
            Ok(canonical_resource(resource).to_owned())
        })
        .collect()
}

/// Why a request names no resource of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetError {
    /// It names one this server does not issue tokens for.
    NotServed,
    /// It names none, and this server protects several.
    Ambiguous,
}

impl TargetError {
    /// What the client is told (`error_description`).
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::NotServed => "resource is not served by this authorization server",
            Self::Ambiguous => {
                "resource is required: this authorization server protects several MCP endpoints"
            }
        }
    }
}

impl From<TargetError> for OAuthError {
    fn from(e: TargetError) -> Self {
        OAuthError::new(ErrorCode::InvalidTarget, e.message())
    }
}

impl Inner {
    /// The resource a request is for: `asked` when it is one of ours (compared in canonical
    /// form), the only one when it names none.
    pub(crate) fn resource_for(&self, asked: Option<&str>) -> Result<&str, TargetError> {
        let resources = &self.settings.resources;
        match asked {
            Some(asked) => {
                let asked = canonical_resource(asked);
                resources.iter().find(|r| *r == asked).map(String::as_str).ok_or(TargetError::NotServed)
            }
            None if resources.len() == 1 => Ok(&resources[0]),
            None => Err(TargetError::Ambiguous),
        }
    }
}
