//! Storage for strongroom: the SQLite and PostgreSQL implementations of the core's storage
//! port, the data directory that holds them (with its exclusive lock), and the signed-head
//! file.
//!
//! This crate stores what it is given. It never sees a secret in the clear (keys arrive as
//! sealed blobs, tokens as hashes), holds no key of its own (private columns are sealed
//! through the core's `FieldCipher` port, which the keystore implements), and it never decides
//! policy. It must refuse to turn an
//! empty, missing or corrupt database into a fresh vault: only [`DataDir::open`] with an
//! empty directory creates one.

mod data_dir;
pub mod dump_file;
mod error;
mod head_file;
mod postgres;
mod sql;
mod sqlite;

pub use data_dir::{DataDir, Opened};
pub use error::Error;
pub use head_file::HeadFile;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
