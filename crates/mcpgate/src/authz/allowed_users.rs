//! Who may log in: an operator's allow-list of user ids, emails, email domains and groups
//! (GitHub organisations), checked when the provider sends the user back and again whenever
//! identity is checked at a refresh. Empty, it lets everyone the provider knows in.

use crate::upstream::UpstreamIdentity;

/// The users allowed to sign in. A user is allowed when any list names them; with every list
/// empty, everyone is. Emails and domains count only when the provider verified the email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedUsers {
    /// Provider user ids (the subject: GitHub's numeric id, an OIDC `sub`).
    pub subjects: Vec<String>,
    /// Email addresses, compared without regard to case.
    pub emails: Vec<String>,
    /// Email domains (`example.com`: exactly that domain, not its subdomains).
    pub email_domains: Vec<String>,
    /// Groups or organisations (GitHub organisation logins, compared without regard to case;
    /// otherwise the provider's `groups` values, exactly).
    pub groups: Vec<String>,
}

impl AllowedUsers {
    /// Everyone the provider signs in.
    pub fn everyone() -> Self {
        Self::default()
    }

    /// Whether no list restricts sign-in.
    pub fn is_everyone(&self) -> bool {
        self.subjects.is_empty()
            && self.emails.is_empty()
            && self.email_domains.is_empty()
            && self.groups.is_empty()
    }

    /// Whether `identity` may sign in.
    pub fn allows(&self, identity: &UpstreamIdentity) -> bool {
        if self.is_everyone() || self.subjects.contains(&identity.subject) {
            return true;
        }
        let verified_email = identity.email.as_deref().filter(|_| identity.email_verified);
        if let Some(email) = verified_email {
            if self.emails.iter().any(|allowed| allowed.eq_ignore_ascii_case(email)) {
                return true;
            }
            // The domain is what follows the last @ (quoted local parts may contain one).
            let domain = email.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default();
            if !domain.is_empty()
                && self.email_domains.iter().any(|allowed| allowed.eq_ignore_ascii_case(domain))
            {
                return true;
            }
        }
        identity
            .groups
            .iter()
            .any(|group| self.groups.iter().any(|allowed| allowed.eq_ignore_ascii_case(group)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(subject: &str, email: Option<&str>, verified: bool, groups: &[&str]) -> UpstreamIdentity {
        UpstreamIdentity {
            subject: subject.into(),
            email: email.map(Into::into),
            email_verified: verified,
            name: None,
            username: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            claims: Default::default(),
        }
    }

    #[test]
    fn an_empty_list_allows_everyone() {
        assert!(AllowedUsers::everyone().allows(&user("1", None, false, &[])));
    }

    #[test]
    fn any_list_that_names_the_user_allows_them() {
        let allowed = AllowedUsers {
            subjects: vec!["42".into()],
            emails: vec!["Ada@Example.org".into()],
            email_domains: vec!["corp.example".into()],
            groups: vec!["Acme".into()],
        };
        assert!(allowed.allows(&user("42", None, false, &[])));
        assert!(allowed.allows(&user("1", Some("ada@example.org"), true, &[])));
        assert!(allowed.allows(&user("1", Some("bob@CORP.example"), true, &[])));
        assert!(allowed.allows(&user("1", None, false, &["acme"])));
        assert!(!allowed.allows(&user("1", Some("eve@elsewhere.example"), true, &["other"])));
    }

    #[test]
    fn unverified_emails_and_look_alike_domains_do_not_count() {
        let allowed = AllowedUsers {
            emails: vec!["ada@example.org".into()],
            email_domains: vec!["corp.example".into()],
            ..Default::default()
        };
        assert!(!allowed.allows(&user("1", Some("ada@example.org"), false, &[])));
        assert!(!allowed.allows(&user("1", Some("eve@evilcorp.example"), true, &[])));
        assert!(!allowed.allows(&user("1", Some("eve@sub.corp.example"), true, &[])));
        assert!(!allowed.allows(&user("1", Some("corp.example"), true, &[])));
        assert!(!allowed.allows(&user("42", None, false, &[])), "ids are compared exactly");
    }
}
