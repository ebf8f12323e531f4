//! The chat layer's error: every refusal a client can get, with a stable `code`. The HTTP and
//! socket layers map it to their wire shapes in one place each; store and hashing failures are
//! `Internal`, whose detail goes to the log and never to the client.

use crate::auth::AuthError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("this invite is invalid, used up or expired")]
    InvalidInvite,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("you are not a member of this room")]
    NotMember,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    #[error("that username is taken")]
    UsernameTaken,
    #[error("already a member of this room")]
    AlreadyMember,
    #[error("this message was deleted")]
    MessageDeleted,
    #[error("this clientId was already used by someone else in this room")]
    ClientIdConflict,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the server is shutting down")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::Unauthenticated => "unauthenticated",
            ChatError::InvalidCredentials => "invalid_credentials",
            ChatError::AccountDisabled => "account_disabled",
            ChatError::RegistrationClosed => "registration_closed",
            ChatError::InvalidInvite => "invalid_invite",
            ChatError::Forbidden(_) => "forbidden",
            ChatError::NotMember => "not_member",
            ChatError::NotFound(_) => "not_found",
            ChatError::Invalid { code, .. } => code,
            ChatError::UsernameTaken => "username_taken",
            ChatError::AlreadyMember => "already_member",
            ChatError::MessageDeleted => "message_deleted",
            ChatError::ClientIdConflict => "client_id_conflict",
            ChatError::RateLimited { .. } => "rate_limited",
            ChatError::Unavailable => "unavailable",
            ChatError::Internal(_) => "internal",
        }
    }

    /// The message a client may see. Internal detail stays in the log.
    pub fn public_message(&self) -> String {
        match self {
            ChatError::Internal(_) => "internal error; the server log has the details".into(),
            other => other.to_string(),
        }
    }

    pub fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        ChatError::Invalid {
            code,
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => ChatError::UsernameTaken,
            StoreError::RegistrationClosed => ChatError::RegistrationClosed,
            StoreError::InvalidInvite => ChatError::InvalidInvite,
            StoreError::NotFound(what) => ChatError::NotFound(what),
            StoreError::AlreadyMember => ChatError::AlreadyMember,
            StoreError::NotMember => ChatError::NotMember,
            StoreError::MessageDeleted => ChatError::MessageDeleted,
            StoreError::ClientIdConflict => ChatError::ClientIdConflict,
            StoreError::BadReplyTarget => ChatError::invalid(
                "invalid_reply_to",
                "replyTo",
                "replyTo must name an earlier message in this room",
            ),
            StoreError::Closed => ChatError::Unavailable,
            other => ChatError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ChatError {
    fn from(e: AuthError) -> Self {
        ChatError::Internal(e.to_string())
    }
}
