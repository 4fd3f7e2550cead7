//! Operators: people who administer the vault, each with roles and a second factor.
//!
//! Which roles may be combined is a rule of this module (separation of duties), so every
//! caller applies the same one.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A person's role. Applications are not operators: they use domain tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// Domains, operators, policies and quorum settings.
    SecurityOfficer,
    /// Holds an unseal share: unseal, seal, tamper and freezing keys, and nothing else.
    Custodian,
    /// Approves pending requests.
    Approver,
    /// Reads, verifies and exports the audit log.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::SecurityOfficer,
        Role::Custodian,
        Role::Approver,
        Role::Auditor,
    ];

    /// The CLI and API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SecurityOfficer => "security-officer",
            Role::Custodian => "custodian",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Role::SecurityOfficer => 1,
            Role::Custodian => 2,
            Role::Approver => 4,
            Role::Auditor => 8,
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(Error::InvalidRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles that separation of duties allows one person to hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Roles(u8);

impl Roles {
    /// Checks a combination against separation of duties:
    /// - an auditor holds no other role (the log's reader must not be among its writers);
    /// - a custodian is not a security officer (holding a share and administering the vault
    ///   would put the root and its configuration in one pair of hands).
    ///
    /// # Errors
    /// [`Error::InvalidRole`] for an empty set; [`Error::RolesConflict`] otherwise.
    pub fn new(roles: &[Role]) -> Result<Self, Error> {
        let bits = roles.iter().fold(0u8, |acc, r| acc | r.bit());
        let set = Roles(bits);
        if bits == 0 {
            return Err(Error::InvalidRole);
        }
        if set.has(Role::Auditor) && bits != Role::Auditor.bit() {
            return Err(Error::RolesConflict);
        }
        if set.has(Role::Custodian) && set.has(Role::SecurityOfficer) {
            return Err(Error::RolesConflict);
        }
        Ok(set)
    }

    /// Rebuilds a set from its stored bits, re-checking the rules.
    ///
    /// # Errors
    /// As [`Roles::new`], or [`Error::Corrupt`] for unknown bits.
    pub fn from_bits(bits: u8) -> Result<Self, Error> {
        if bits & !0x0f != 0 {
            return Err(Error::Corrupt("role bits"));
        }
        let roles: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| bits & r.bit() != 0)
            .collect();
        Roles::new(&roles)
    }

    /// The stored form.
    #[must_use]
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether the set holds `role`.
    #[must_use]
    pub fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// The roles, in a stable order.
    #[must_use]
    pub fn to_vec(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.has(*r)).collect()
    }
}

/// An operator's login name: 1 to 64 characters from `[a-z0-9._-]`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct OperatorName(String);

impl OperatorName {
    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OperatorName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidName)
        }
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_of_duties() {
        use Role::*;
        assert!(Roles::new(&[SecurityOfficer, Approver]).is_ok());
        assert!(Roles::new(&[Custodian, Approver]).is_ok());
        assert!(Roles::new(&[Auditor]).is_ok());
        assert!(matches!(
            Roles::new(&[Auditor, Approver]),
            Err(Error::RolesConflict)
        ));
        assert!(matches!(
            Roles::new(&[Custodian, SecurityOfficer]),
            Err(Error::RolesConflict)
        ));
        assert!(matches!(Roles::new(&[]), Err(Error::InvalidRole)));
        let r = Roles::new(&[SecurityOfficer, Approver]).unwrap();
        assert_eq!(Roles::from_bits(r.bits()).unwrap(), r);
        assert!(Roles::from_bits(0x10).is_err());
        assert!(Roles::from_bits(Custodian.bit() | SecurityOfficer.bit()).is_err());
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn names() {
        assert!("alice.smith-2".parse::<OperatorName>().is_ok());
        assert!("Alice".parse::<OperatorName>().is_err());
        assert!("".parse::<OperatorName>().is_err());
    }
}
