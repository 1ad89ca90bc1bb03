//! Authorization transactions: what a client asked for at `/authorize`, carried through the
//! consent page and the provider's login to our callback.
//!
//! A transaction is not stored: it travels sealed (AES-GCM under our key), as the consent
//! form's hidden field and as the `state` sent to the provider, so neither the browser nor the
//! provider can read or alter it, and `/authorize` writes nothing — a flood of abandoned
//! authorization requests costs no storage. It expires ten minutes after it was opened, and
//! it is used once: the callback (or a denial) records its id with put-if-absent, so a
//! replayed state finds it taken.

use super::failure::ValidatedRedirect;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Inner;
use crate::store::{Collection, StoreError};

/// Ids of the transactions already used, until they would have expired anyway.
const USED_TRANSACTIONS: Collection = Collection::new("used_transactions");
/// How long a user has to consent and log in upstream.
pub(crate) const TRANSACTION_TTL: Duration = Duration::from_secs(600);
/// Associated data of every sealed transaction, so no other sealed value passes for one.
const AAD: &[u8] = b"mcpgate transaction v1";

/// An authorization in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Transaction {
    /// Random; what marks the transaction used.
    pub id: String,
    pub client_id: String,
    /// Where the client is sent back: validated by `/authorize` against its registration.
    pub redirect_uri: ValidatedRedirect,
    pub client_state: Option<String>,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: String,
    /// Our PKCE verifier towards the provider (it never leaves sealed).
    pub upstream_verifier: String,
    /// The OIDC nonce sent upstream.
    pub nonce: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

/// Why a sealed transaction is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not one of ours, altered, or past its ten minutes.
    Invalid,
    /// Already used (a replay, or a denied request approved afterwards).
    Used,
}

impl Inner {
    /// The transaction sealed into the handle that travels with the browser.
    pub(crate) fn seal_transaction(&self, transaction: &Transaction) -> Result<String, StoreError> {
        let plain = secrecy::zeroize::Zeroizing::new(
            serde_json::to_vec(transaction).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        Ok(URL_SAFE_NO_PAD.encode(self.sealer.seal(AAD, &plain)))
    }

    /// The transaction in a handle, if it is ours, intact and not expired (it may be used).
    pub(crate) fn open_transaction(&self, handle: &str) -> Result<Transaction, Unusable> {
        let sealed = URL_SAFE_NO_PAD.decode(handle).map_err(|_| Unusable::Invalid)?;
        let plain = self.sealer.open(AAD, &sealed).map_err(|_| Unusable::Invalid)?;
        let transaction: Transaction =
            serde_json::from_slice(plain.expose_secret()).map_err(|_| Unusable::Invalid)?;
        if transaction.expires_at <= self.settings.clock.unix_now() {
            return Err(Unusable::Invalid);
        }
        Ok(transaction)
    }

    /// Whether the transaction was used already.
    pub(crate) async fn transaction_used(&self, transaction: &Transaction) -> Result<bool, StoreError> {
        Ok(self.store.get(USED_TRANSACTIONS, &transaction.id).await?.is_some())
    }

    /// Marks the transaction used; `Used` if it already was. Atomic across instances.
    pub(crate) async fn use_transaction(
        &self,
        transaction: &Transaction,
    ) -> Result<Result<(), Unusable>, StoreError> {
        let remaining = transaction.expires_at.saturating_sub(self.settings.clock.unix_now()).max(1);
        let first = self
            .store
            .put_if_absent(USED_TRANSACTIONS, &transaction.id, b"1", Some(Duration::from_secs(remaining)))
            .await?;
        Ok(if first.is_some() { Ok(()) } else { Err(Unusable::Used) })
    }
}

impl Transaction {
    /// The upstream PKCE verifier.
    pub(crate) fn upstream_verifier(&self) -> SecretString {
        SecretString::from(self.upstream_verifier.clone())
    }
}
