//! The store layer's error type. Domain refusals that only the store can decide atomically
//! (a taken username, a reused invite) are variants here; `chat` maps them to its own errors.

use std::sync::Arc;

#[derive(Debug, thiserror::Error, Clone)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "database file {path} was written by a newer parley (schema version {found}, this binary supports up to {supported}); refusing to open it"
    )]
    SchemaTooNew {
        path: String,
        found: u64,
        supported: u64,
    },
    #[error("database is in use by another program that does not share it: {0}")]
    Locked(String),
    #[error("storage error: {0}")]
    Storage(Arc<str>),
    #[error("record does not decode: {0}")]
    Corrupt(String),
    #[error("record does not encode: {0}")]
    Encode(String),
    #[error("the store is shut down")]
    Closed,
    #[error("storage is unavailable; the server log has the cause")]
    Unavailable,
    #[error("the write batch was aborted by another write's storage failure; retry")]
    BatchAborted,

    #[error("username is taken")]
    UsernameTaken,
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("invite is invalid, used up or expired")]
    InvalidInvite,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("already a member")]
    AlreadyMember,
    #[error("not a member")]
    NotMember,
    #[error("message is deleted")]
    MessageDeleted,
    #[error("client id already used by another sender")]
    ClientIdConflict,
    #[error("reply target does not exist")]
    BadReplyTarget,
}

impl StoreError {
    /// A storage failure poisons the whole write transaction; a refusal does not (ops check
    /// before they write, so a refused op has changed nothing).
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_) | StoreError::Corrupt(_) | StoreError::Encode(_)
        )
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(Arc::from(e.to_string()))
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError,
    std::io::Error
);
