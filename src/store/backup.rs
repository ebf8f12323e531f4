//! Online backup: a consistent copy of every table, read from one read transaction while the
//! server keeps writing, written to a new redb file that is renamed into place when complete.

use redb::{
    Builder, ConcurrencyMode, Database, Key, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, Value, WriteTransaction,
};
use std::path::Path;

use super::StoreError;
use super::tables::*;

/// Copies the store at `source` (which may be open in a running server) to `destination`.
/// Returns the number of records copied.
pub fn backup_to(source: &Path, destination: &Path) -> Result<u64, StoreError> {
    if destination.exists() {
        return Err(StoreError::Storage(
            format!(
                "{} already exists; refusing to overwrite it",
                destination.display()
            )
            .into(),
        ));
    }
    let source_db = Builder::new()
        .set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .open_read_only(source)?;
    let snapshot = source_db.begin_read()?;
    let partial = destination.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let copied = {
        let target = Database::create(&partial)?;
        let txn = target.begin_write()?;
        let mut copied = 0;
        copied += copy(&snapshot, &txn, META)?;
        copied += copy(&snapshot, &txn, USERS)?;
        copied += copy(&snapshot, &txn, USERNAMES)?;
        copied += copy(&snapshot, &txn, SESSIONS)?;
        copied += copy(&snapshot, &txn, USER_SESSIONS)?;
        copied += copy(&snapshot, &txn, ROOMS)?;
        copied += copy(&snapshot, &txn, MEMBERS)?;
        copied += copy(&snapshot, &txn, USER_ROOMS)?;
        copied += copy(&snapshot, &txn, MESSAGES)?;
        copied += copy(&snapshot, &txn, CLIENT_IDS)?;
        copied += copy(&snapshot, &txn, EVENTS)?;
        copied += copy(&snapshot, &txn, DIRECT_ROOMS)?;
        copied += copy(&snapshot, &txn, INVITES)?;
        txn.commit()?;
        copied
    };
    std::fs::rename(&partial, destination)?;
    Ok(copied)
}

fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let source = from.open_table(table)?;
    let mut target = to.open_table(table)?;
    let mut copied = 0;
    for entry in source.iter()? {
        let (key, value) = entry?;
        target.insert(key.value(), value.value())?;
        copied += 1;
    }
    Ok(copied)
}
