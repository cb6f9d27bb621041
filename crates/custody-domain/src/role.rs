//! Roles of service accounts and what each may do.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Snapshotter,
    Member,
    Admin,
}

/// Everything an API call can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    ReportSnapshots,
    WriteFlows,
    ReportAttestations,
    ManageAttestationTypes,
    ManageServiceAccounts,
    /// Create policy versions, attach and detach them, allowlist artifacts.
    ManagePolicies,
    /// Create and edit controls.
    ManageControls,
    /// Create, change and delete notification actions.
    ManageActions,
}

impl Role {
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "snapshotter" => Some(Role::Snapshotter),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Snapshotter => "snapshotter",
            Role::Reader => "reader",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match p {
            Read => true,
            ReportSnapshots => self >= Role::Snapshotter,
            WriteFlows
            | ReportAttestations
            | ManageAttestationTypes
            | ManagePolicies
            | ManageActions => self >= Role::Member,
            ManageControls => self >= Role::Admin,
            // Managing accounts is restricted further by `can_grant`: nobody
            // hands out more than they hold.
            ManageServiceAccounts => self >= Role::Member,
        }
    }

    /// Whether a caller with this role may create an account (or a key for
    /// an account) holding `other`.
    pub fn can_grant(self, other: Role) -> bool {
        self.allows(Permission::ManageServiceAccounts) && other <= self
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
            format!("unknown role '{s}': expected admin, member, snapshotter or reader")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        assert!(Role::Reader.allows(Permission::Read));
        assert!(!Role::Reader.allows(Permission::ReportAttestations));
        assert!(!Role::Snapshotter.allows(Permission::WriteFlows));
        assert!(Role::Snapshotter.allows(Permission::ReportSnapshots));
        assert!(Role::Member.allows(Permission::ReportAttestations));
        assert!(Role::Member.can_grant(Role::Member));
        assert!(!Role::Member.can_grant(Role::Admin));
        assert!(!Role::Snapshotter.can_grant(Role::Reader));
        assert!(Role::Admin.can_grant(Role::Admin));
    }
}
