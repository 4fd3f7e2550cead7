//! Quorum: which operations need M-of-N approvals, who may approve them, and how many.
//!
//! Pure rules; the server stores requests and approvals and calls these.

use std::fmt;
use std::str::FromStr;

use crate::operator::{Role, Roles};
use crate::{DomainId, Error};

/// Approvals needed when no rule is set (production): one person besides the requester.
pub const DEFAULT_APPROVALS: u8 = 1;
/// Most approvals a rule may demand.
pub const MAX_APPROVALS: u8 = 16;

/// An operation that can require approvals. The names are what `--operation` takes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum GatedOp {
    /// Create a domain (vault-wide rule).
    CreateDomain,
    /// Destroy a domain and every key in it (vault-wide rule).
    DestroyDomain,
    /// Add an operator (vault-wide rule).
    AddOperator,
    /// Change an operator's roles or domain (vault-wide rule).
    ChangeRoles,
    /// Change a quorum rule (vault-wide rule).
    SetQuorum,
    /// Destroy a key (rule of the key's domain, else vault-wide).
    DestroyKey,
    /// Make a key warmer (rule of the key's domain, else vault-wide).
    WarmKey,
    /// One signature by a warm key (rule of the key's domain, else vault-wide).
    SignWarm,
    /// Export a cold key as a cold-storage bundle (rule of the key's domain, else vault-wide).
    ExportKey,
    /// Move the root key's protection between Shamir shares and a PKCS#11 token (vault-wide
    /// rule).
    MigrateSeal,
    /// Set a wallet's policy (rule of the wallet's domain, else vault-wide).
    SetPolicy,
    /// Change which algorithms a domain allows, deprecates or disables (rule of the domain,
    /// else vault-wide).
    SetAlgorithms,
    /// Make an encrypted backup of the whole vault (vault-wide rule): approved, it is
    /// collected once by its requester.
    CreateBackup,
    /// Unseal over a database older than the audit head a node signed (a deliberate
    /// restore): how many security officers must sign the acceptance (offline, `rollback
    /// sign`; vault-wide rule). Never filed as a request.
    AcceptRollback,
    /// A node's configuration file changed: how many security officers must sign the new one
    /// (offline, `config sign`) before a node unseals under it (vault-wide rule). Never filed
    /// as a request.
    ChangeConfig,
}

impl GatedOp {
    /// Every gated operation.
    pub const ALL: [GatedOp; 15] = [
        GatedOp::CreateDomain,
        GatedOp::DestroyDomain,
        GatedOp::AddOperator,
        GatedOp::ChangeRoles,
        GatedOp::SetQuorum,
        GatedOp::DestroyKey,
        GatedOp::WarmKey,
        GatedOp::SignWarm,
        GatedOp::ExportKey,
        GatedOp::MigrateSeal,
        GatedOp::SetPolicy,
        GatedOp::SetAlgorithms,
        GatedOp::CreateBackup,
        GatedOp::ChangeConfig,
        GatedOp::AcceptRollback,
    ];

    /// The name used by the API, the CLI and audit records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GatedOp::CreateDomain => "domain.create",
            GatedOp::DestroyDomain => "domain.destroy",
            GatedOp::AddOperator => "operator.add",
            GatedOp::ChangeRoles => "operator.roles",
            GatedOp::SetQuorum => "quorum.set",
            GatedOp::DestroyKey => "key.destroy",
            GatedOp::WarmKey => "key.warm",
            GatedOp::SignWarm => "key.sign",
            GatedOp::ExportKey => "key.export",
            GatedOp::MigrateSeal => "seal.migrate",
            GatedOp::SetPolicy => "policy.set",
            GatedOp::SetAlgorithms => "domain.algorithms",
            GatedOp::CreateBackup => "backup.create",
            GatedOp::ChangeConfig => "config.change",
            GatedOp::AcceptRollback => "rollback.accept",
        }
    }

    /// Whether its rule is set vault-wide only (not per domain).
    #[must_use]
    pub fn vault_wide(self) -> bool {
        matches!(
            self,
            GatedOp::CreateDomain
                | GatedOp::DestroyDomain
                | GatedOp::AddOperator
                | GatedOp::ChangeRoles
                | GatedOp::SetQuorum
                | GatedOp::MigrateSeal
                | GatedOp::CreateBackup
                | GatedOp::ChangeConfig
                | GatedOp::AcceptRollback
        )
    }

    /// Configuration changes, which security officers may approve as well as approvers.
    #[must_use]
    pub fn is_configuration(self) -> bool {
        matches!(
            self,
            GatedOp::CreateDomain
                | GatedOp::SetPolicy
                | GatedOp::SetAlgorithms
                | GatedOp::DestroyDomain
                | GatedOp::AddOperator
                | GatedOp::ChangeRoles
                | GatedOp::SetQuorum
                | GatedOp::MigrateSeal
                | GatedOp::CreateBackup
                | GatedOp::ChangeConfig
                | GatedOp::AcceptRollback
        )
    }
}

impl FromStr for GatedOp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        GatedOp::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or(Error::UnknownOperation)
    }
}

impl fmt::Display for GatedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quorum rule: `approvals` distinct approvers for `op`, vault-wide (`domain: None`) or in
/// one domain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QuorumRule {
    /// The domain, or `None` for the vault-wide rule.
    pub domain: Option<DomainId>,
    /// The operation.
    pub op: GatedOp,
    /// Approvals needed (1..=[`MAX_APPROVALS`]).
    pub approvals: u8,
}

/// Approvals `op` needs in `domain` under `rules`: the domain's rule, else the vault-wide
/// rule, else [`DEFAULT_APPROVALS`].
#[must_use]
pub fn required_approvals(rules: &[QuorumRule], op: GatedOp, domain: Option<DomainId>) -> u8 {
    let domain_rule = if op.vault_wide() {
        None
    } else {
        domain.and_then(|d| rules.iter().find(|r| r.op == op && r.domain == Some(d)))
    };
    domain_rule
        .or_else(|| rules.iter().find(|r| r.op == op && r.domain.is_none()))
        .map_or(DEFAULT_APPROVALS, |r| r.approvals)
}

/// Whether an operator with `roles` (restricted to `scope`, if set) may approve `op` touching
/// `domain`. The requester is excluded separately.
#[must_use]
pub fn may_approve(
    roles: Roles,
    scope: Option<DomainId>,
    op: GatedOp,
    domain: Option<DomainId>,
) -> bool {
    if let Some(s) = scope
        && domain != Some(s)
    {
        return false;
    }
    roles.has(Role::Approver) || (op.is_configuration() && roles.has(Role::SecurityOfficer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fall_back_from_domain_to_vault_to_default() {
        let d = DomainId::from_random([1; 16]);
        let e = DomainId::from_random([2; 16]);
        let rules = [
            QuorumRule {
                domain: None,
                op: GatedOp::DestroyKey,
                approvals: 2,
            },
            QuorumRule {
                domain: Some(d),
                op: GatedOp::DestroyKey,
                approvals: 3,
            },
            QuorumRule {
                domain: Some(d),
                op: GatedOp::CreateDomain,
                approvals: 9,
            },
        ];
        assert_eq!(required_approvals(&rules, GatedOp::DestroyKey, Some(d)), 3);
        assert_eq!(required_approvals(&rules, GatedOp::DestroyKey, Some(e)), 2);
        assert_eq!(
            required_approvals(&rules, GatedOp::CreateDomain, Some(d)),
            DEFAULT_APPROVALS,
            "vault-wide only"
        );
        assert_eq!(
            required_approvals(&[], GatedOp::AddOperator, None),
            DEFAULT_APPROVALS
        );
    }

    #[test]
    fn all_lists_every_operation_and_names_parse_back() {
        // The match is exhaustive: a new variant fails to compile here until it is counted.
        let position = |op: GatedOp| match op {
            GatedOp::CreateDomain => 0,
            GatedOp::AddOperator => 1,
            GatedOp::SetQuorum => 2,
            GatedOp::DestroyKey => 3,
            GatedOp::WarmKey => 4,
            GatedOp::SignWarm => 5,
            GatedOp::ChangeRoles => 6,
            GatedOp::ExportKey => 7,
            GatedOp::DestroyDomain => 8,
            GatedOp::MigrateSeal => 9,
            GatedOp::SetPolicy => 10,
            GatedOp::ChangeConfig => 11,
            GatedOp::SetAlgorithms => 12,
            GatedOp::AcceptRollback => 13,
            GatedOp::CreateBackup => 14,
        };
        let mut seen = [false; 15];
        for op in GatedOp::ALL {
            seen[position(op)] = true;
            assert_eq!(op.as_str().parse::<GatedOp>().unwrap(), op);
        }
        assert!(seen.iter().all(|s| *s), "GatedOp::ALL misses a variant");
    }

    #[test]
    fn who_approves_what() {
        let d = DomainId::from_random([1; 16]);
        let e = DomainId::from_random([2; 16]);
        let approver = Roles::new(&[Role::Approver]).unwrap();
        let so = Roles::new(&[Role::SecurityOfficer]).unwrap();
        let auditor = Roles::new(&[Role::Auditor]).unwrap();
        let custodian = Roles::new(&[Role::Custodian]).unwrap();
        for op in GatedOp::ALL {
            assert!(may_approve(approver, None, op, Some(d)), "{op}");
            assert_eq!(
                may_approve(so, None, op, None),
                op.is_configuration(),
                "{op}"
            );
            assert!(!may_approve(auditor, None, op, None));
            assert!(!may_approve(custodian, None, op, None));
            assert_eq!(op.as_str().parse::<GatedOp>().unwrap(), op);
        }
        assert!(may_approve(approver, Some(d), GatedOp::DestroyKey, Some(d)));
        assert!(
            !may_approve(approver, Some(d), GatedOp::DestroyKey, Some(e)),
            "out of scope"
        );
        assert!(
            !may_approve(approver, Some(d), GatedOp::CreateDomain, None),
            "scoped approvers do not approve vault-wide changes"
        );
    }
}
