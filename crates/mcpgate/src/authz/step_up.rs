//! Step-up for clients that refresh before they re-authorize. A client answered `403
//! insufficient_scope` may first refresh its token (the TypeScript SDK does, whenever it holds a
//! refresh token: modelcontextprotocol/typescript-sdk#2255); a refresh never widens scopes (RFC
//! 6749 §6), so it would get the same token, the same 403, and give up. So the resource tells
//! the authorization server which grant was asked for which scopes ([`StepUpNotice`]); the next
//! refresh of that grant, if the grant still lacks them, is refused once with `invalid_grant`
//! ("authorize again"), which sends such clients to a new authorization with the larger scope
//! set — nothing is widened, the grant itself stays valid, and the notice is consumed.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{AuthServer, Inner};
use crate::Principal;
use crate::policy::StepUpNotice;
use crate::store::{Collection, StoreExt};

/// Pending step-ups, by grant id.
pub(crate) const STEP_UPS: Collection = Collection::new("step_ups");
/// How long a notice waits for the refresh it is for.
const NOTICE_TTL: Duration = Duration::from_secs(600);

/// What a grant was asked to step up to.
#[derive(Debug, Serialize, Deserialize)]
struct Notice {
    scopes: Vec<String>,
}

#[async_trait]
impl StepUpNotice for AuthServer {
    async fn step_up_asked(&self, caller: &Principal, scopes: &[String]) {
        // Only our own tokens name a grant of ours.
        if caller.issuer() != Some(self.inner.settings.issuer.as_str()) {
            return;
        }
        let Some(grant_id) = caller.claim("gid").and_then(serde_json::Value::as_str) else { return };
        let notice = Notice { scopes: scopes.to_vec() };
        if let Err(e) = self.inner.store.put_json(STEP_UPS, grant_id, &notice, Some(NOTICE_TTL)).await {
            tracing::warn!(error = %e, "could not note a step-up");
        }
    }
}

impl Inner {
    /// Whether the grant `grant_id`, holding `scopes`, was asked to step up to scopes it lacks;
    /// the notice is consumed (atomically: one refresh is refused for it).
    pub(crate) async fn step_up_pending(&self, grant_id: &str, scopes: &[String]) -> bool {
        match self.store.take_json::<Notice>(STEP_UPS, grant_id).await {
            Ok(Some(notice)) => notice.scopes.iter().any(|s| !scopes.contains(s)),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not read step-up notices");
                false
            }
        }
    }
}
