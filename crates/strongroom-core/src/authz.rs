//! The one authorisation hook every API operation passes through.
//!
//! It is a pure function of who is asking and what they ask for, so it can be tested
//! exhaustively. Roles, quorum and policy (later issues) extend [`Principal`] and [`Decision`].

use crate::operator::{Role, Roles};
use crate::{DomainId, OperatorId, TokenId};

/// Who is making a request, as established by authentication.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Principal {
    /// No credential, or a credential that failed to authenticate.
    Anonymous,
    /// The root token issued at initialisation: full power over the vault.
    Root {
        /// The root token's identifier.
        token: TokenId,
    },
    /// The production bootstrap token: adds operators until two security officers have
    /// logged in.
    Bootstrap {
        /// The token's identifier.
        token: TokenId,
    },
    /// An application token confined to one domain.
    Application {
        /// The token's identifier.
        token: TokenId,
        /// The only domain this token can see.
        domain: DomainId,
    },
    /// A key-manager token confined to one domain: staking tools list, import and delete
    /// (make cold) validator keys through the Ethereum Keymanager API, and nothing else.
    Keymanager {
        /// The token's identifier.
        token: TokenId,
        /// The only domain this token can see.
        domain: DomainId,
    },
    /// The node itself, acting on a standing rule (a hot key demoting itself when idle). It
    /// is granted nothing through [`authorize`]; its actions are recorded as `system`.
    System,
    /// The Ethereum remote-signing listener of a domain: consensus clients send no credential
    /// (the listener is reachable only by client certificate or on loopback). It is granted
    /// nothing through [`authorize`]; its handlers serve only validator duties of its domain
    /// (named in each audit record).
    Eth2Listener,
    /// A logged-in operator.
    Operator {
        /// The operator.
        id: OperatorId,
        /// Their roles.
        roles: Roles,
        /// If set, the only domain they act in.
        domain: Option<DomainId>,
    },
}

impl Principal {
    /// A short, non-secret label for audit records: `anonymous`, `root:<id>` or `app:<id>`.
    #[must_use]
    pub fn audit_label(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_owned(),
            Principal::System => "system".to_owned(),
            Principal::Eth2Listener => "eth2-listener".to_owned(),
            Principal::Root { token } => format!("root:{token}"),
            Principal::Bootstrap { token } => format!("bootstrap:{token}"),
            Principal::Application { token, .. } => format!("app:{token}"),
            Principal::Keymanager { token, .. } => format!("keymanager:{token}"),
            Principal::Operator { id, .. } => format!("operator:{id}"),
        }
    }
}

/// What a request asks to do, with the domain it touches where there is one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Operation {
    /// Health and seal status (public).
    Status,
    /// Initialise a fresh vault (the shares it returns are the credential).
    Init,
    /// Submit one unseal share (the share is the credential).
    Unseal,
    /// Wipe key material from memory.
    Seal,
    /// Create a cryptographic domain.
    CreateDomain,
    /// Destroy a cryptographic domain and every key in it.
    DestroyDomain,
    /// Move the root key's protection between Shamir shares and a hardware token.
    MigrateSeal,
    /// Start or cancel a rekey (a new root key and new shares).
    Rekey,
    /// Make (file, or collect once approved) an encrypted backup of the whole vault.
    CreateBackup,
    /// Submit a share to a rekey (the share is the credential).
    RekeyShare,
    /// List domains.
    ListDomains,
    /// Issue an application token for a domain.
    CreateToken,
    /// Revoke a token.
    RevokeToken,
    /// Create a key in a domain.
    CreateKey(DomainId),
    /// List or read keys of a domain.
    ReadKeys(DomainId),
    /// Sign with a key of a domain.
    Sign(DomainId),
    /// Destroy (crypto-shred) a key of a domain.
    DestroyKey(DomainId),
    /// Export a cold key of a domain as a cold-storage bundle (optionally taking it offline).
    ExportKey(DomainId),
    /// Bring an exported key back online from its bundle and custodians' shares.
    ImportKey(DomainId),
    /// Log in (the password and one-time code are the credential).
    Login,
    /// Add an operator.
    CreateOperator,
    /// List operators.
    ListOperators,
    /// Disable an operator.
    DisableOperator,
    /// Change an operator's roles or domain.
    ChangeRoles,
    /// Register one's own approval key.
    RegisterApprovalKey,
    /// Change a key's temperature (who exactly may is decided by the temperature rules).
    ChangeTemperature(DomainId),
    /// Approve or reject a pending request (who exactly may is decided per request).
    ApproveRequest,
    /// List and read pending requests.
    ReadRequests,
    /// Change a quorum rule.
    SetQuorum,
    /// Read quorum rules.
    ReadQuorum,
    /// Export the audit log with its evidence.
    ExportAudit,
    /// Accept the wall clock after it was found to have moved backwards.
    AcknowledgeClock,
    /// Set the policy of a wallet in a domain.
    SetPolicy(DomainId),
    /// Rotate a domain's master key (a new version; blobs re-wrapped in the background).
    RotateDomain(DomainId),
    /// List, import and delete (make cold) the validator keys of a domain through the
    /// Ethereum Keymanager API.
    ManageValidators(DomainId),
    /// Tamper response: zeroize every key at once and seal; only an unseal with the shares
    /// brings the vault back.
    Tamper,
    /// Check a configuration file's officer signatures against the vault's security
    /// officers (read-only).
    VerifyConfig,
}

/// Why a request was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DenyReason {
    /// No valid credential was presented (HTTP 401).
    Unauthenticated,
    /// The principal may not perform this operation (HTTP 403).
    NotPermitted,
    /// The target lies outside the principal's domain; answered exactly like a missing
    /// object (HTTP 404) so that other domains' contents cannot be probed.
    OutOfScope,
}

/// The outcome of authorisation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, for the given reason.
    Deny(DenyReason),
}

/// Decides whether `principal` may perform `operation`.
#[must_use]
pub fn authorize(principal: &Principal, operation: &Operation) -> Decision {
    use Decision::{Allow, Deny};
    match (principal, operation) {
        // The node's own standing rules call the operations they need directly.
        (Principal::System | Principal::Eth2Listener, _) => Deny(DenyReason::NotPermitted),
        // The shares, or the password and one-time code, are the credential for these.
        (
            _,
            Operation::Status
            | Operation::Init
            | Operation::Unseal
            | Operation::RekeyShare
            | Operation::Login,
        ) => Allow,
        (Principal::Anonymous, _) => Deny(DenyReason::Unauthenticated),
        (Principal::Root { .. }, _) => Allow,
        (Principal::Bootstrap { .. }, Operation::CreateOperator | Operation::ListOperators) => {
            Allow
        }
        (Principal::Bootstrap { .. }, _) => Deny(DenyReason::NotPermitted),
        (Principal::Application { domain, .. }, op) => match op {
            Operation::ReadKeys(d) | Operation::Sign(d) => {
                if d == domain {
                    Allow
                } else {
                    Deny(DenyReason::OutOfScope)
                }
            }
            Operation::CreateKey(d)
            | Operation::DestroyKey(d)
            | Operation::ExportKey(d)
            | Operation::ImportKey(d)
            | Operation::ChangeTemperature(d)
            | Operation::SetPolicy(d)
            | Operation::RotateDomain(d)
            | Operation::ManageValidators(d)
                if d != domain =>
            {
                Deny(DenyReason::OutOfScope)
            }
            // Its own requests only (the server filters by requester).
            Operation::ReadRequests => Allow,
            _ => Deny(DenyReason::NotPermitted),
        },
        // The Keymanager API of its own domain, nothing else (it cannot sign).
        (Principal::Keymanager { domain, .. }, Operation::ManageValidators(d)) => {
            if d == domain {
                Allow
            } else {
                Deny(DenyReason::OutOfScope)
            }
        }
        (Principal::Keymanager { .. }, _) => Deny(DenyReason::NotPermitted),
        (Principal::Operator { roles, domain, .. }, op) => operator_decision(*roles, *domain, op),
    }
}

/// What each role may do. Signing is for applications (and, later, quorum-approved requests),
/// never for a person's session.
fn operator_decision(roles: Roles, scope: Option<DomainId>, op: &Operation) -> Decision {
    let target = match op {
        Operation::CreateKey(d)
        | Operation::ReadKeys(d)
        | Operation::Sign(d)
        | Operation::DestroyKey(d)
        | Operation::ExportKey(d)
        | Operation::ImportKey(d)
        | Operation::ChangeTemperature(d)
        | Operation::SetPolicy(d)
        | Operation::RotateDomain(d)
        | Operation::ManageValidators(d) => Some(*d),
        _ => None,
    };
    if let (Some(scope), Some(target)) = (scope, target)
        && scope != target
    {
        return Decision::Deny(DenyReason::OutOfScope);
    }
    // The root key's protection is the whole vault's: no domain-scoped officer touches it.
    if matches!(
        op,
        Operation::MigrateSeal | Operation::Rekey | Operation::CreateBackup
    ) && scope.is_some()
    {
        return Decision::Deny(DenyReason::NotPermitted);
    }
    let allowed = |role: Role| -> bool {
        match (role, op) {
            (
                Role::SecurityOfficer,
                Operation::CreateDomain
                | Operation::DestroyDomain
                | Operation::MigrateSeal
                | Operation::Rekey
                | Operation::CreateBackup
                | Operation::ListDomains
                | Operation::CreateToken
                | Operation::RevokeToken
                | Operation::CreateKey(_)
                | Operation::ReadKeys(_)
                | Operation::DestroyKey(_)
                | Operation::ExportKey(_)
                | Operation::ImportKey(_)
                | Operation::CreateOperator
                | Operation::ListOperators
                | Operation::DisableOperator
                | Operation::ChangeRoles
                | Operation::Seal
                | Operation::ApproveRequest
                | Operation::ReadRequests
                | Operation::SetQuorum
                | Operation::ReadQuorum
                | Operation::AcknowledgeClock
                | Operation::SetPolicy(_)
                | Operation::RotateDomain(_)
                | Operation::ManageValidators(_)
                | Operation::VerifyConfig,
            ) => true,
            // Safety actions: sealing, freezing and the tamper response never wait for anyone.
            (
                Role::Custodian,
                Operation::Seal | Operation::ChangeTemperature(_) | Operation::Tamper,
            ) => true,
            (Role::SecurityOfficer, Operation::Tamper) => true,
            (Role::SecurityOfficer, Operation::ChangeTemperature(_)) => true,
            // Those who approve register the key they approve with.
            (Role::SecurityOfficer | Role::Approver, Operation::RegisterApprovalKey) => true,
            (
                Role::Approver,
                Operation::ListDomains
                | Operation::ReadKeys(_)
                | Operation::ApproveRequest
                | Operation::ReadRequests
                | Operation::ReadQuorum,
            ) => true,
            (
                Role::Auditor,
                Operation::ListDomains
                | Operation::ReadKeys(_)
                | Operation::ListOperators
                | Operation::ReadRequests
                | Operation::ReadQuorum
                | Operation::ExportAudit
                | Operation::VerifyConfig,
            ) => true,
            _ => false,
        }
    };
    if roles.to_vec().into_iter().any(allowed) {
        Decision::Allow
    } else {
        Decision::Deny(DenyReason::NotPermitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ops(d: DomainId) -> Vec<Operation> {
        vec![
            Operation::Status,
            Operation::Init,
            Operation::Unseal,
            Operation::Seal,
            Operation::CreateDomain,
            Operation::DestroyDomain,
            Operation::MigrateSeal,
            Operation::Rekey,
            Operation::RekeyShare,
            Operation::CreateBackup,
            Operation::ListDomains,
            Operation::CreateToken,
            Operation::RevokeToken,
            Operation::CreateKey(d),
            Operation::ReadKeys(d),
            Operation::Sign(d),
            Operation::DestroyKey(d),
            Operation::ExportKey(d),
            Operation::ImportKey(d),
            Operation::Login,
            Operation::CreateOperator,
            Operation::ListOperators,
            Operation::DisableOperator,
            Operation::ChangeRoles,
            Operation::RegisterApprovalKey,
            Operation::ChangeTemperature(d),
            Operation::ApproveRequest,
            Operation::ReadRequests,
            Operation::SetQuorum,
            Operation::ReadQuorum,
            Operation::ExportAudit,
            Operation::AcknowledgeClock,
            Operation::SetPolicy(d),
            Operation::RotateDomain(d),
            Operation::ManageValidators(d),
            Operation::Tamper,
            Operation::VerifyConfig,
        ]
    }

    #[test]
    fn table_of_every_principal_and_operation() {
        let mine = DomainId::from_random([1; 16]);
        let other = DomainId::from_random([2; 16]);
        let token = TokenId::from_random([3; 16]);
        let app = Principal::Application {
            token,
            domain: mine,
        };
        let root = Principal::Root { token };
        let public = [
            Operation::Status,
            Operation::Init,
            Operation::Unseal,
            Operation::RekeyShare,
            Operation::Login,
        ];
        for op in all_ops(mine).into_iter().chain(all_ops(other)) {
            assert_eq!(authorize(&root, &op), Decision::Allow, "{op:?}");
            assert_eq!(
                authorize(&Principal::System, &op),
                Decision::Deny(DenyReason::NotPermitted),
                "{op:?}"
            );
            let anon = authorize(&Principal::Anonymous, &op);
            if public.contains(&op) {
                assert_eq!(anon, Decision::Allow);
                assert_eq!(authorize(&app, &op), Decision::Allow);
                continue;
            }
            assert_eq!(anon, Decision::Deny(DenyReason::Unauthenticated), "{op:?}");
            let expected = match op {
                Operation::ReadKeys(d) | Operation::Sign(d) if d == mine => Decision::Allow,
                // An application reads its own requests (filtered by the server).
                Operation::ReadRequests => Decision::Allow,
                Operation::CreateKey(d)
                | Operation::ReadKeys(d)
                | Operation::Sign(d)
                | Operation::DestroyKey(d)
                | Operation::ExportKey(d)
                | Operation::ImportKey(d)
                | Operation::ChangeTemperature(d)
                | Operation::SetPolicy(d)
                | Operation::RotateDomain(d)
                | Operation::ManageValidators(d)
                    if d == other =>
                {
                    Decision::Deny(DenyReason::OutOfScope)
                }
                _ => Decision::Deny(DenyReason::NotPermitted),
            };
            assert_eq!(authorize(&app, &op), expected, "{op:?}");
            // A key-manager token: the Keymanager API of its own domain and nothing else.
            let keymanager = Principal::Keymanager {
                token,
                domain: mine,
            };
            let expected = match op {
                Operation::ManageValidators(d) if d == mine => Decision::Allow,
                Operation::ManageValidators(_) => Decision::Deny(DenyReason::OutOfScope),
                _ => Decision::Deny(DenyReason::NotPermitted),
            };
            assert_eq!(authorize(&keymanager, &op), expected, "{op:?}");
        }
    }

    #[test]
    fn operators_by_role_and_scope() {
        let mine = DomainId::from_random([1; 16]);
        let other = DomainId::from_random([2; 16]);
        let id = OperatorId::from_random([4; 16]);
        let op = |roles: &[Role], domain| Principal::Operator {
            id,
            roles: Roles::new(roles).unwrap(),
            domain,
        };
        let so = op(&[Role::SecurityOfficer], None);
        let custodian = op(&[Role::Custodian], None);
        let auditor = op(&[Role::Auditor], None);
        let scoped = op(&[Role::SecurityOfficer], Some(mine));
        let approver = op(&[Role::Approver], None);
        let allow = Decision::Allow;
        let no = Decision::Deny(DenyReason::NotPermitted);
        for (p, o, expected) in [
            (&so, Operation::CreateDomain, allow),
            (&so, Operation::CreateOperator, allow),
            (&so, Operation::CreateKey(other), allow),
            (&so, Operation::Sign(mine), no),
            (&so, Operation::Seal, allow),
            (&custodian, Operation::Seal, allow),
            (&so, Operation::Tamper, allow),
            (&custodian, Operation::Tamper, allow),
            (&approver, Operation::Tamper, no),
            (&auditor, Operation::Tamper, no),
            (&custodian, Operation::CreateDomain, no),
            (&custodian, Operation::ReadKeys(mine), no),
            (&auditor, Operation::ListOperators, allow),
            (&auditor, Operation::CreateOperator, no),
            (&so, Operation::ChangeRoles, allow),
            (&so, Operation::DestroyDomain, allow),
            (&so, Operation::MigrateSeal, allow),
            (&scoped, Operation::MigrateSeal, no),
            (&custodian, Operation::MigrateSeal, no),
            (&approver, Operation::MigrateSeal, no),
            (&auditor, Operation::MigrateSeal, no),
            (&so, Operation::Rekey, allow),
            (&scoped, Operation::Rekey, no),
            (&custodian, Operation::Rekey, no),
            (&approver, Operation::Rekey, no),
            (&auditor, Operation::Rekey, no),
            (&so, Operation::CreateBackup, allow),
            (&scoped, Operation::CreateBackup, no),
            (&custodian, Operation::CreateBackup, no),
            (&approver, Operation::CreateBackup, no),
            (&custodian, Operation::DestroyDomain, no),
            (&approver, Operation::DestroyDomain, no),
            (&so, Operation::ExportKey(mine), allow),
            (&so, Operation::ImportKey(mine), allow),
            (&custodian, Operation::ExportKey(mine), no),
            (&approver, Operation::ImportKey(mine), no),
            (&auditor, Operation::ExportKey(mine), no),
            (
                &scoped,
                Operation::ExportKey(other),
                Decision::Deny(DenyReason::OutOfScope),
            ),
            (&scoped, Operation::ChangeRoles, allow),
            (&approver, Operation::ChangeRoles, no),
            (&custodian, Operation::ChangeRoles, no),
            (&auditor, Operation::ChangeRoles, no),
            (&auditor, Operation::Seal, no),
            (&approver, Operation::ReadKeys(mine), allow),
            (&approver, Operation::DestroyKey(mine), no),
            (&approver, Operation::ApproveRequest, allow),
            (&approver, Operation::ReadRequests, allow),
            (&approver, Operation::SetQuorum, no),
            (&auditor, Operation::ReadRequests, allow),
            (&auditor, Operation::ExportAudit, allow),
            (&so, Operation::ExportAudit, no),
            (&so, Operation::AcknowledgeClock, allow),
            (&custodian, Operation::AcknowledgeClock, no),
            (&auditor, Operation::AcknowledgeClock, no),
            (&auditor, Operation::ApproveRequest, no),
            (&custodian, Operation::ApproveRequest, no),
            (&custodian, Operation::ChangeTemperature(mine), allow),
            (&so, Operation::ChangeTemperature(other), allow),
            (&approver, Operation::ChangeTemperature(mine), no),
            (&auditor, Operation::ChangeTemperature(mine), no),
            (
                &scoped,
                Operation::ChangeTemperature(other),
                Decision::Deny(DenyReason::OutOfScope),
            ),
            (&so, Operation::SetQuorum, allow),
            (&so, Operation::SetPolicy(other), allow),
            (&approver, Operation::SetPolicy(mine), no),
            (&scoped, Operation::SetPolicy(mine), allow),
            (&so, Operation::RotateDomain(other), allow),
            (&scoped, Operation::RotateDomain(mine), allow),
            (
                &scoped,
                Operation::RotateDomain(other),
                Decision::Deny(DenyReason::OutOfScope),
            ),
            (&custodian, Operation::RotateDomain(mine), no),
            (&auditor, Operation::RotateDomain(mine), no),
            (
                &scoped,
                Operation::SetPolicy(other),
                Decision::Deny(DenyReason::OutOfScope),
            ),
            (&scoped, Operation::CreateKey(mine), allow),
            (
                &scoped,
                Operation::CreateKey(other),
                Decision::Deny(DenyReason::OutOfScope),
            ),
            (
                &scoped,
                Operation::ReadKeys(other),
                Decision::Deny(DenyReason::OutOfScope),
            ),
        ] {
            assert_eq!(authorize(p, &o), expected, "{p:?} {o:?}");
        }
        // The bootstrap token only adds and lists operators.
        let boot = Principal::Bootstrap {
            token: TokenId::from_random([5; 16]),
        };
        for (o, expected) in [
            (Operation::CreateOperator, allow),
            (Operation::ListOperators, allow),
            (Operation::CreateDomain, no),
            (Operation::CreateToken, no),
            (Operation::CreateKey(mine), no),
            (Operation::Seal, no),
            (Operation::DisableOperator, no),
            (Operation::ChangeRoles, no),
        ] {
            assert_eq!(authorize(&boot, &o), expected, "bootstrap {o:?}");
        }
        // Every operator may use the public operations.
        for p in [&so, &custodian, &auditor, &scoped, &approver] {
            assert_eq!(authorize(p, &Operation::Login), allow);
        }
    }
}
