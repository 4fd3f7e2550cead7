//! The crate's one error type.

/// Errors from opening or creating storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another strongroom process holds this data directory.
    #[error("data directory {0} is in use by another strongroom process")]
    Locked(std::path::PathBuf),
    /// The directory holds traces of a vault but no database: refusing to start fresh.
    #[error(
        "data directory {0} has vault files but no database; refusing to create a fresh vault over it"
    )]
    DatabaseMissing(std::path::PathBuf),
    /// The database exists but is not a valid strongroom database.
    #[error("database is corrupt or not a strongroom database: {0}")]
    Corrupt(&'static str),
    /// The database was written by a newer strongroom.
    #[error("database schema version {0} is newer than this strongroom supports")]
    UnsupportedSchema(i64),
    /// A file-system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed or could not be reached.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// The storage configuration is unusable.
    #[error("storage configuration: {0}")]
    Config(&'static str),
    /// A storage-port error.
    #[error(transparent)]
    Core(#[from] strongroom_core::Error),
}

pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}
