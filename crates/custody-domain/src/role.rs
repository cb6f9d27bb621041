//! Roles of service accounts and what each may do.
//!
//! The roles separate duties: the key a pipeline uses (`ci`) reports what
//! happened but cannot change what is required of it; the people who set
//! requirements (`policy-admin`) do not report evidence; only `admin`
//! manages accounts. Being a server admin (creating organisations) is not a
//! role at all: it belongs to the account created at first start and can
//! be reached through no role. The matrix is in docs/security.md.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Role {
    /// Reads everything in its organisation.
    #[serde(rename = "reader")]
    Reader,
    /// Reports what runs: snapshots, and environments that do not exist yet.
    #[serde(rename = "snapshotter")]
    Snapshotter,
    /// What a pipeline needs: trails, artifacts, attestations, snapshots.
    #[serde(rename = "ci")]
    Ci,
    /// A person on the team: what `ci` does, plus decisions for controls
    /// and managing environments.
    #[serde(rename = "member")]
    Member,
    /// Sets the requirements: flows and their templates, policies and
    /// where they apply, the allowlist, attestation types, controls and
    /// notifications. Reports no evidence.
    #[serde(rename = "policy-admin")]
    PolicyAdmin,
    /// Everything in its organisation, accounts and keys included.
    #[serde(rename = "admin")]
    Admin,
}

/// Everything an API call can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    /// Report to an environment.
    ReportSnapshots,
    /// Create an environment that does not exist yet.
    CreateEnvironments,
    /// Change, rename or archive an environment that exists.
    ManageEnvironments,
    /// Begin trails (under their flow's template), report artifacts and
    /// attestations.
    ReportEvidence,
    /// Record decisions for controls.
    ReportDecisions,
    /// Change what is required: flows and templates (a trail's own
    /// template too), flow tags, policies and their attachment, the
    /// allowlist, attestation types, controls, notification actions.
    ManageRequirements,
    /// Create, change and delete service accounts and others' keys.
    ManageServiceAccounts,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Reader,
        Role::Snapshotter,
        Role::Ci,
        Role::Member,
        Role::PolicyAdmin,
        Role::Admin,
    ];

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::PolicyAdmin => "policy-admin",
            Role::Member => "member",
            Role::Ci => "ci",
            Role::Snapshotter => "snapshotter",
            Role::Reader => "reader",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match p {
            Read => true,
            ReportSnapshots | CreateEnvironments => {
                matches!(self, Snapshotter | Ci | Member | Admin)
            }
            ReportEvidence => matches!(self, Ci | Member | Admin),
            ManageEnvironments => matches!(self, Member | Admin),
            ReportDecisions => matches!(self, Member | PolicyAdmin | Admin),
            ManageRequirements => matches!(self, PolicyAdmin | Admin),
            ManageServiceAccounts => self == Admin,
        }
    }

    /// Whether a caller with this role may create an account holding
    /// `other`, change an account to it, or make keys for such an account.
    /// Only admins manage accounts; they may hand out any role of their
    /// organisation, and nothing beyond it (server admin is no role).
    pub fn can_grant(self, _other: Role) -> bool {
        self.allows(Permission::ManageServiceAccounts)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| {
            format!(
                "unknown role '{s}': expected {}",
                Role::ALL.map(Role::as_str).join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duties_are_separated() {
        use Permission::*;
        assert!(Role::Reader.allows(Read));
        assert!(!Role::Reader.allows(ReportEvidence));
        assert!(Role::Snapshotter.allows(ReportSnapshots));
        assert!(!Role::Snapshotter.allows(ManageEnvironments));
        // A pipeline's key reports but cannot relax what it must report.
        assert!(Role::Ci.allows(ReportEvidence));
        assert!(!Role::Ci.allows(ManageRequirements));
        assert!(!Role::Ci.allows(ReportDecisions));
        assert!(!Role::Member.allows(ManageRequirements));
        // Who sets requirements does not make the evidence for them.
        assert!(Role::PolicyAdmin.allows(ManageRequirements));
        assert!(!Role::PolicyAdmin.allows(ReportEvidence));
        assert!(!Role::PolicyAdmin.allows(ManageServiceAccounts));
        assert!(Role::Admin.can_grant(Role::Admin));
        assert!(!Role::Member.can_grant(Role::Reader));
    }

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert!(
            "owner"
                .parse::<Role>()
                .unwrap_err()
                .contains("policy-admin")
        );
    }
}
