//! The admin commands that work on the store directly, beside a running server or without
//! one: `parley user add|passwd|list|disable` and `parley export`.
//!
//! Must not: bypass the rules a server would apply (names are validated as at sign-up).

use std::io::{BufRead, Write};

use anyhow::{Context, bail};

use super::UserCommand;
use crate::auth::{PasswordHasher, new_token};
use crate::chat::validate;
use crate::chat::views::MessageView;
use crate::config::Config;
use crate::ids::{MessageSeq, RoomId};
use crate::store::{Admission, Store};

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = config.database_path();
    if !path.exists() {
        bail!(
            "no database at {} (start the server once, or pass --data-dir)",
            path.display()
        );
    }
    Ok(Store::open(&path)?)
}

/// The password from stdin, or a generated one (printed by the caller).
fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        let (token, _) = new_token();
        return Ok((token[..20].to_owned(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    validate::password(&password, "password").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((password, false))
}

pub(super) async fn user_command(command: UserCommand, config: &Config) -> anyhow::Result<()> {
    // `add` may create the database (an operator setting up before the first start); every
    // other command needs one that exists.
    let store = match &command {
        UserCommand::Add { .. } => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
            Store::open(&config.database_path())?
        }
        _ => open_store(config)?,
    };
    let result = user_command_on(&store, command).await;
    store.close().await;
    result
}

async fn user_command_on(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    let hasher = PasswordHasher::new(1);
    let find = |username: &str| -> anyhow::Result<crate::ids::UserId> {
        store
            .snapshot()?
            .user_id_by_name(username)?
            .with_context(|| format!("no user named {username:?}"))
    };
    match command {
        UserCommand::Add {
            username,
            admin,
            display_name,
            password_stdin,
        } => {
            let username = validate::username(&username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let display_name = match display_name {
                Some(name) => validate::display_name(&name).map_err(|e| anyhow::anyhow!("{e}"))?,
                None => username.clone(),
            };
            let (password, generated) = read_password(password_stdin)?;
            let hash = hasher.hash(password.clone()).await?;
            let (id, user) = store
                .create_user(username, display_name, hash, Admission::Operator { admin })
                .await?;
            println!(
                "created user {} (id {id}{})",
                user.username,
                if user.is_admin { ", admin" } else { "" }
            );
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let id = find(&username)?;
            let (password, generated) = read_password(password_stdin)?;
            let hash = hasher.hash(password.clone()).await?;
            store.set_password(id, hash, None).await?;
            println!("password changed for {username}; its sessions were ended");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List => {
            let users = store.snapshot()?.all_users()?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>6}  {:<32}  {:<24}  {:<5}  {:<8}  CREATED",
                "ID", "USERNAME", "DISPLAY NAME", "ADMIN", "DISABLED"
            )?;
            for (id, user) in users {
                writeln!(
                    out,
                    "{:>6}  {:<32}  {:<24}  {:<5}  {:<8}  {}",
                    id.0,
                    user.username,
                    user.display_name,
                    if user.is_admin { "yes" } else { "no" },
                    if user.disabled { "yes" } else { "no" },
                    user.created_at.to_rfc3339()
                )?;
            }
        }
        UserCommand::Disable { username, enable } => {
            let id = find(&username)?;
            store.set_disabled(id, !enable).await?;
            println!(
                "{username} is {}",
                if enable {
                    "enabled"
                } else {
                    "disabled; its sessions were ended"
                }
            );
        }
    }
    Ok(())
}

pub(super) async fn export(config: &Config, room: RoomId) -> anyhow::Result<()> {
    const PAGE: usize = 500;
    let store = open_store(config)?;
    let snapshot = store.snapshot()?;
    snapshot
        .room(room)?
        .with_context(|| format!("no room with id {room}"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = MessageSeq(0);
    loop {
        let page = snapshot.messages_after(room, after, PAGE)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (seq, message) in &page {
            serde_json::to_writer(&mut out, &MessageView::new(room, *seq, message))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    drop(snapshot);
    store.close().await;
    Ok(())
}
