//! Wallet temperature: how reachable a key's secret is.
//!
//! - **Cold**: only the sealed blob exists; it is never opened and cannot sign.
//! - **Warm**: may be opened, but every signature needs its own quorum.
//! - **Hot**: signs for authorised callers at once (within policy, once policies exist).
//!
//! Making a key warmer needs a quorum; making it colder (freezing) needs one security officer
//! or custodian, because safety never waits.

use std::fmt;
use std::str::FromStr;

use crate::operator::Role;
use crate::{Error, Principal};

/// A key's temperature.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum Temperature {
    /// Sealed only; cannot sign.
    Cold,
    /// Signs only with a quorum per signature.
    Warm,
    /// Signs at once.
    Hot,
}

impl Temperature {
    /// All three, coldest first.
    pub const ALL: [Temperature; 3] = [Temperature::Cold, Temperature::Warm, Temperature::Hot];

    /// The name used by the API and the CLI.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Temperature::Cold => "cold",
            Temperature::Warm => "warm",
            Temperature::Hot => "hot",
        }
    }
}

impl FromStr for Temperature {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Temperature::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(Error::InvalidTemperature)
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What changing a key's temperature takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Change {
    /// Nothing to do (already there).
    Unchanged,
    /// Done at once: making it colder, by someone allowed to freeze.
    Now,
    /// Making it warmer: a quorum request (or at once in dev mode).
    NeedsQuorum,
    /// Not allowed for this principal.
    Refused,
}

/// The rule for moving a key from `from` to `to`, asked by `principal`.
#[must_use]
pub fn change(principal: &Principal, from: Temperature, to: Temperature) -> Change {
    if from == to {
        return Change::Unchanged;
    }
    match principal {
        // Dev mode's root: the requester's own approval counts.
        Principal::Root { .. } => Change::Now,
        Principal::Operator { roles, .. } => {
            let so = roles.has(Role::SecurityOfficer);
            if to < from {
                // Freezing: a security officer or a custodian, at once.
                if so || roles.has(Role::Custodian) {
                    Change::Now
                } else {
                    Change::Refused
                }
            } else if so {
                Change::NeedsQuorum
            } else {
                Change::Refused
            }
        }
        _ => Change::Refused,
    }
}

/// Whether a key at `t` may sign at once (hot), needs a quorum per signature (warm), or not
/// at all (cold).
#[must_use]
pub fn signing(t: Temperature) -> Change {
    match t {
        Temperature::Hot => Change::Now,
        Temperature::Warm => Change::NeedsQuorum,
        Temperature::Cold => Change::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::Roles;
    use crate::{DomainId, OperatorId, TokenId};

    /// Every transition for every kind of principal.
    #[test]
    fn exhaustive_state_machine() {
        let op = |roles: &[Role]| Principal::Operator {
            id: OperatorId::from_random([1; 16]),
            roles: Roles::new(roles).unwrap(),
            domain: None,
        };
        let token = TokenId::from_random([2; 16]);
        let principals = [
            ("root", Principal::Root { token }),
            ("security-officer", op(&[Role::SecurityOfficer])),
            ("custodian", op(&[Role::Custodian])),
            ("approver", op(&[Role::Approver])),
            ("auditor", op(&[Role::Auditor])),
            ("so+approver", op(&[Role::SecurityOfficer, Role::Approver])),
            ("custodian+approver", op(&[Role::Custodian, Role::Approver])),
            (
                "application",
                Principal::Application {
                    token,
                    domain: DomainId::from_random([3; 16]),
                },
            ),
            ("bootstrap", Principal::Bootstrap { token }),
            ("anonymous", Principal::Anonymous),
        ];
        for (name, p) in &principals {
            for from in Temperature::ALL {
                for to in Temperature::ALL {
                    let got = change(p, from, to);
                    let expected = if from == to {
                        Change::Unchanged
                    } else if *name == "root" {
                        Change::Now
                    } else if to < from {
                        // Freezing.
                        match *name {
                            "security-officer" | "custodian" | "so+approver"
                            | "custodian+approver" => Change::Now,
                            _ => Change::Refused,
                        }
                    } else {
                        match *name {
                            "security-officer" | "so+approver" => Change::NeedsQuorum,
                            _ => Change::Refused,
                        }
                    };
                    assert_eq!(got, expected, "{name}: {from} -> {to}");
                }
            }
        }
        assert_eq!(signing(Temperature::Hot), Change::Now);
        assert_eq!(signing(Temperature::Warm), Change::NeedsQuorum);
        assert_eq!(signing(Temperature::Cold), Change::Refused);
        for t in Temperature::ALL {
            assert_eq!(t.as_str().parse::<Temperature>().unwrap(), t);
        }
        assert!("lukewarm".parse::<Temperature>().is_err());
    }
}
