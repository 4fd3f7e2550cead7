//! Newtype identifiers. All are random (v4) UUIDs, so they reveal neither order nor count.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::Error;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Builds the identifier from 16 random bytes (drawn by the caller's entropy source).
            #[must_use]
            pub fn from_random(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            /// Rebuilds an identifier from its stored 16-byte form.
            #[must_use]
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            /// The 16-byte form, as stored and as bound into authenticated data.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::try_parse(s).map(Self).map_err(|_| Error::InvalidId)
            }
        }
    };
}

id_type!(
    /// One installation of strongroom (one database). Bound into shares and audit heads.
    VaultId
);
id_type!(
    /// A cryptographic domain (tenant).
    DomainId
);
id_type!(
    /// A key inside a domain.
    KeyId
);
id_type!(
    /// An API token; the token's secret value is never stored, only its hash.
    TokenId
);
id_type!(
    /// An operator (a person with roles).
    OperatorId
);
id_type!(
    /// A pending request awaiting approvals.
    PendingId
);
id_type!(
    /// One HTTP request, echoed in `x-request-id` and written into its audit record.
    RequestId
);

/// A domain's name: 1 to 64 characters from `[a-z0-9_-]`, so it is safe in URLs, logs and files.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DomainName(String);

impl DomainName {
    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DomainName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidName)
        }
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = KeyId::from_random([7; 16]);
        let text = id.to_string();
        assert_eq!(text.parse::<KeyId>().unwrap(), id);
        assert!("not-a-uuid".parse::<KeyId>().is_err());
    }

    #[test]
    fn domain_names_are_restricted() {
        assert!("default".parse::<DomainName>().is_ok());
        assert!("team_a-1".parse::<DomainName>().is_ok());
        for bad in ["", "Upper", "sp ace", "dot.ted", "../x", &"a".repeat(65)] {
            assert!(bad.parse::<DomainName>().is_err(), "{bad:?} accepted");
        }
    }
}
