//! Accounts and sessions: register, login, logout, profile, password, invites, user lookup.

use std::net::IpAddr;
use std::time::Instant;

use super::views::{InviteView, ServerInfo, SignedIn, UserView, Viewer};
use super::{Chat, ChatError, SESSION_TOUCH_INTERVAL_SECS, SessionEnd, validate};
use crate::auth::{new_token, token_hash};
use crate::clock::Timestamp;
use crate::config::Registration;
use crate::ids::UserId;
use crate::store::Admission;
use crate::store::records::{InviteRecord, SessionRecord};

pub const USER_SEARCH_DEFAULT: usize = 20;
pub const USER_SEARCH_MAX: usize = 100;
pub const INVITE_MAX_USES: u32 = 1000;
pub const INVITE_MAX_HOURS: u32 = 24 * 365;

pub struct RegisterInput {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub invite: Option<String>,
}

impl Chat {
    pub fn server_info(&self) -> Result<ServerInfo, ChatError> {
        Ok(ServerInfo {
            name: "parley",
            version: env!("CARGO_PKG_VERSION"),
            registration: self.registration.as_str(),
            needs_setup: self.store.snapshot()?.user_count()? == 0,
        })
    }

    pub async fn register(
        &self,
        input: RegisterInput,
        address: IpAddr,
    ) -> Result<SignedIn, ChatError> {
        let address_key = address.to_string();
        let now = Instant::now();
        if let Err(retry_after_secs) = self.register_by_address.check(&address_key, now) {
            return Err(ChatError::RateLimited { retry_after_secs });
        }
        let username = validate::username(&input.username)?;
        validate::password(&input.password, "password")?;
        let display_name = match &input.display_name {
            Some(name) => validate::display_name(name)?,
            None => username.clone(),
        };
        let admission = match self.registration {
            Registration::Open => Admission::Open,
            Registration::Closed => Admission::Closed,
            Registration::Invite => {
                Admission::InviteOnly(input.invite.as_deref().and_then(token_hash))
            }
        };
        // Refuse the cheap cases before spending an argon2 hash; the store re-checks
        // atomically when it writes.
        let snapshot = self.store.snapshot()?;
        let first_account = snapshot.user_count()? == 0;
        if snapshot.user_id_by_name(&username)?.is_some() {
            return Err(ChatError::UsernameTaken);
        }
        if !first_account {
            match admission {
                Admission::Closed => return Err(ChatError::RegistrationClosed),
                Admission::InviteOnly(None) => return Err(ChatError::InvalidInvite),
                _ => {}
            }
        }
        drop(snapshot);
        self.register_by_address.record(&address_key, now);
        let hash = self.hasher.hash(input.password).await?;
        let (id, user) = self
            .store
            .create_user(username, display_name, hash, admission)
            .await?;
        tracing::info!(user = %id, username = %user.username, admin = user.is_admin, "account created");
        let token = self.start_session(id).await?;
        Ok(SignedIn {
            user: self.user_view(id, &user),
            token,
        })
    }

    pub async fn login(
        &self,
        username: &str,
        password: String,
        address: IpAddr,
    ) -> Result<SignedIn, ChatError> {
        let user_key = username.to_lowercase();
        let address_key = address.to_string();
        let now = Instant::now();
        for check in [
            self.login_by_user.check(&user_key, now),
            self.login_by_address.check(&address_key, now),
        ] {
            if let Err(retry_after_secs) = check {
                return Err(ChatError::RateLimited { retry_after_secs });
            }
        }
        let found = {
            let snapshot = self.store.snapshot()?;
            match snapshot.user_id_by_name(username)? {
                Some(id) => snapshot.user(id)?.map(|user| (id, user)),
                None => None,
            }
        };
        let verified = match &found {
            Some((_, user)) => {
                self.hasher
                    .verify(password, user.password_hash.clone())
                    .await?
            }
            None => self.hasher.verify_decoy(password).await?,
        };
        let (id, user) = match found {
            Some(found) if verified => found,
            _ => {
                self.login_by_user.record(&user_key, now);
                self.login_by_address.record(&address_key, now);
                return Err(ChatError::InvalidCredentials);
            }
        };
        if user.disabled {
            return Err(ChatError::AccountDisabled);
        }
        self.login_by_user.reset(&user_key);
        let token = self.start_session(id).await?;
        Ok(SignedIn {
            user: self.user_view(id, &user),
            token,
        })
    }

    async fn start_session(&self, user: UserId) -> Result<String, ChatError> {
        let (token, hash) = new_token();
        let now = Timestamp::now();
        self.store
            .create_session(
                hash,
                SessionRecord {
                    user,
                    created_at: now,
                    expires_at: now.plus_seconds(self.session_secs),
                    last_seen: Some(now),
                },
            )
            .await?;
        Ok(token)
    }

    /// Who holds `token`, if it is a live session of an enabled account.
    pub async fn authenticate(&self, token: &str) -> Result<Viewer, ChatError> {
        let hash = token_hash(token).ok_or(ChatError::Unauthenticated)?;
        let (session, user) = {
            let snapshot = self.store.snapshot()?;
            let session = snapshot.session(&hash)?.ok_or(ChatError::Unauthenticated)?;
            let user = snapshot
                .user(session.user)?
                .ok_or(ChatError::Unauthenticated)?;
            (session, user)
        };
        let now = Timestamp::now();
        if session.expires_at <= now {
            // Expired sessions are removed as they are met.
            self.store.delete_session(hash).await?;
            return Err(ChatError::Unauthenticated);
        }
        if user.disabled {
            return Err(ChatError::AccountDisabled);
        }
        let last_seen = session.last_seen.unwrap_or(session.created_at);
        if now.0 - last_seen.0 > SESSION_TOUCH_INTERVAL_SECS * 1000 {
            self.store
                .touch_session(hash, now, now.plus_seconds(self.session_secs))
                .await?;
        }
        Ok(Viewer {
            id: session.user,
            user,
            token_hash: hash,
        })
    }

    pub async fn logout(&self, viewer: &Viewer) -> Result<(), ChatError> {
        // Sockets first: once the caller hears "logged out", nothing more reaches them.
        self.sessions
            .end_session(&viewer.token_hash, SessionEnd::LoggedOut);
        Ok(self.store.delete_session(viewer.token_hash).await?)
    }

    pub fn me(&self, viewer: &Viewer) -> UserView {
        self.user_view(viewer.id, &viewer.user)
    }

    /// `avatar: Some(None)` clears the avatar.
    pub async fn update_me(
        &self,
        viewer: &Viewer,
        display_name: Option<String>,
        avatar: Option<Option<String>>,
    ) -> Result<UserView, ChatError> {
        let display_name = display_name
            .as_deref()
            .map(validate::display_name)
            .transpose()?;
        let avatar = match avatar {
            Some(Some(a)) => Some(Some(validate::avatar(&a)?)),
            other => other,
        };
        let user = self
            .store
            .update_user(viewer.id, display_name, avatar)
            .await?;
        Ok(self.user_view(viewer.id, &user))
    }

    /// Changes the password after checking the current one; ends every other session.
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: String,
        new: String,
    ) -> Result<(), ChatError> {
        validate::password(&new, "newPassword")?;
        let user_key = viewer.user.username.to_lowercase();
        let now = Instant::now();
        if let Err(retry_after_secs) = self.login_by_user.check(&user_key, now) {
            return Err(ChatError::RateLimited { retry_after_secs });
        }
        if !self
            .hasher
            .verify(current, viewer.user.password_hash.clone())
            .await?
        {
            self.login_by_user.record(&user_key, now);
            return Err(ChatError::invalid(
                "invalid_credentials",
                "currentPassword",
                "the current password is wrong",
            ));
        }
        let hash = self.hasher.hash(new).await?;
        self.sessions.end_user(
            viewer.id,
            Some(&viewer.token_hash),
            SessionEnd::PasswordChanged,
        );
        self.store
            .set_password(viewer.id, hash, Some(viewer.token_hash))
            .await?;
        Ok(())
    }

    pub fn search_users(
        &self,
        query: &str,
        limit: Option<usize>,
    ) -> Result<Vec<UserView>, ChatError> {
        let limit = limit.unwrap_or(USER_SEARCH_DEFAULT);
        if limit == 0 || limit > USER_SEARCH_MAX {
            return Err(ChatError::invalid(
                "bad_query",
                "limit",
                format!("limit must be 1 to {USER_SEARCH_MAX}"),
            ));
        }
        let found = self.store.snapshot()?.search_users(query.trim(), limit)?;
        Ok(found.iter().map(|(id, u)| self.user_view(*id, u)).collect())
    }

    pub fn user(&self, id: UserId) -> Result<UserView, ChatError> {
        let user = self
            .store
            .snapshot()?
            .user(id)?
            .ok_or(ChatError::NotFound("user"))?;
        Ok(self.user_view(id, &user))
    }

    /// Server admins create invite links (the way in when registration is `invite`).
    pub async fn create_invite(
        &self,
        viewer: &Viewer,
        max_uses: Option<u32>,
        expires_in_hours: Option<u32>,
    ) -> Result<InviteView, ChatError> {
        if !viewer.user.is_admin {
            return Err(ChatError::Forbidden(
                "only server admins can create invites",
            ));
        }
        let max_uses = max_uses.unwrap_or(1);
        if max_uses == 0 || max_uses > INVITE_MAX_USES {
            return Err(ChatError::invalid(
                "invalid_field",
                "maxUses",
                format!("maxUses must be 1 to {INVITE_MAX_USES}"),
            ));
        }
        let hours = expires_in_hours.unwrap_or(24 * 7);
        if hours == 0 || hours > INVITE_MAX_HOURS {
            return Err(ChatError::invalid(
                "invalid_field",
                "expiresInHours",
                format!("expiresInHours must be 1 to {INVITE_MAX_HOURS}"),
            ));
        }
        let (token, hash) = new_token();
        let now = Timestamp::now();
        let expires_at = now.plus_seconds(i64::from(hours) * 3600);
        self.store
            .create_invite(
                hash,
                InviteRecord {
                    created_by: viewer.id,
                    created_at: now,
                    expires_at,
                    uses_left: max_uses,
                },
            )
            .await?;
        Ok(InviteView {
            token,
            expires_at: expires_at.to_rfc3339(),
            max_uses,
        })
    }
}
