//! Input rules for everything a person types: pure functions, each returning the cleaned value
//! or a `ChatError::Invalid` naming the field. Limits are named constants (see docs/API.md).

use super::ChatError;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN_BYTES: usize = 8;
/// argon2 would take a megabyte password; nobody needs more than this.
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const ROOM_NAME_MAX: usize = 80;
pub const TOPIC_MAX: usize = 500;
pub const MESSAGE_MAX_CHARS: usize = 8000;
pub const AVATAR_MAX: usize = 512;

pub fn username(raw: &str) -> Result<String, ChatError> {
    let bad = |why: &str| {
        ChatError::invalid(
            "invalid_username",
            "username",
            format!(
                "username {why}: use {USERNAME_MIN}-{USERNAME_MAX} letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        )
    };
    let len = raw.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(bad("has the wrong length"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(bad("has a character that is not allowed"));
    }
    if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad("must start with a letter or digit"));
    }
    Ok(raw.to_owned())
}

pub fn password(raw: &str, field: &'static str) -> Result<(), ChatError> {
    if raw.len() < PASSWORD_MIN_BYTES || raw.len() > PASSWORD_MAX_BYTES {
        return Err(ChatError::invalid(
            "invalid_password",
            field,
            format!("password must be {PASSWORD_MIN_BYTES} to {PASSWORD_MAX_BYTES} bytes long"),
        ));
    }
    Ok(())
}

/// A one-line name: trimmed, 1..=max characters, no control characters.
fn line(
    raw: &str,
    max: usize,
    code: &'static str,
    field: &'static str,
    what: &str,
) -> Result<String, ChatError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > max {
        return Err(ChatError::invalid(
            code,
            field,
            format!("{what} must be 1 to {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ChatError::invalid(
            code,
            field,
            format!("{what} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn display_name(raw: &str) -> Result<String, ChatError> {
    line(
        raw,
        DISPLAY_NAME_MAX,
        "invalid_display_name",
        "displayName",
        "display name",
    )
}

pub fn room_name(raw: &str) -> Result<String, ChatError> {
    line(raw, ROOM_NAME_MAX, "invalid_room_name", "name", "room name")
}

/// An empty topic means "no topic".
pub fn topic(raw: &str) -> Result<Option<String>, ChatError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    line(trimmed, TOPIC_MAX, "invalid_topic", "topic", "topic").map(Some)
}

pub fn avatar(raw: &str) -> Result<String, ChatError> {
    line(raw, AVATAR_MAX, "invalid_avatar", "avatar", "avatar")
}

/// Message text: trailing whitespace trimmed, 1..=MESSAGE_MAX_CHARS characters, no NUL.
/// Newlines and leading indentation are kept: people paste code.
pub fn content(raw: &str) -> Result<String, ChatError> {
    let trimmed = raw.trim_end();
    let bad = |m: String| ChatError::invalid("invalid_content", "content", m);
    if trimmed.trim_start().is_empty() {
        return Err(bad("message is empty".into()));
    }
    if trimmed.chars().count() > MESSAGE_MAX_CHARS {
        return Err(bad(format!(
            "message is longer than {MESSAGE_MAX_CHARS} characters"
        )));
    }
    if trimmed.contains('\0') {
        return Err(bad("message contains a NUL character".into()));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["bob", "Alice_1", "a.b-c", "x".repeat(32).as_str()] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "",
            "has space",
            "_lead",
            "ünï",
            &"x".repeat(33),
            "a/b",
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("12345678", "password").is_ok());
        assert!(password("1234567", "password").is_err());
        assert!(password(&"x".repeat(1025), "password").is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(room_name("  general ").ok().as_deref(), Some("general"));
        assert!(room_name("   ").is_err());
        assert!(room_name(&"x".repeat(81)).is_err());
        assert!(room_name("a\u{7}b").is_err());
        assert!(display_name(&"名".repeat(64)).is_ok());
        assert_eq!(topic("  ").ok(), Some(None));
    }

    #[test]
    fn content_rules() {
        assert_eq!(
            content("  hi\n  there \n\n").ok().as_deref(),
            Some("  hi\n  there")
        );
        assert!(content(" \n\t ").is_err());
        assert!(content("a\0b").is_err());
        assert!(content(&"字".repeat(8000)).is_ok());
        assert!(content(&"字".repeat(8001)).is_err());
    }
}
