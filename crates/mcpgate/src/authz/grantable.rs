//! Which scopes a client may be granted (C4), for every grant that starts one (the sign-in at
//! `/authorize`, a machine client at `/token`): what it registered, or every supported scope but
//! the step-up ones; a step-up scope once it asks for it.

use super::Inner;
use super::client::{ClientRecord, ClientSource};

impl Inner {
    /// The scopes `client` may have when it asks for `requested` (space separated, may be
    /// empty). A step-up scope is granted when asked for, to any client but an operator's
    /// configured with a scope list of its own (see `step_up_scopes`).
    pub(crate) fn grantable_scopes<'a>(&'a self, client: &'a ClientRecord, requested: &str) -> Vec<&'a str> {
        let settings = &self.settings;
        let step_up = |scope: &&str| settings.step_up_scopes.iter().any(|s| s == scope);
        let mut allowed: Vec<&str> = match &client.scope {
            Some(registered) => registered.split_ascii_whitespace().collect(),
            // By default not the step-up scopes: those are granted when a client asks for them.
            None => settings.scopes_supported.iter().map(String::as_str).filter(|s| !step_up(s)).collect(),
        };
        if client.source != ClientSource::Configured || client.scope.is_none() {
            let asked = |scope: &str| requested.split_ascii_whitespace().any(|s| s == scope);
            allowed.extend(settings.step_up_scopes.iter().map(String::as_str).filter(|s| asked(s)));
        }
        allowed
    }
}
