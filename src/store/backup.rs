//! Online backup: a consistent copy of every table, read from one read transaction while the
//! server keeps writing, written to a new redb file that is renamed into place when complete.
//!
//! Must not: choose which tables to copy; it copies whatever `tables::for_each_table` lists.

use redb::{
    Builder, ConcurrencyMode, Database, Key, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, Value, WriteTransaction,
};
use std::path::Path;

use super::StoreError;
use super::tables::{TableVisitor, for_each_table};

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
        let mut copier = Copier {
            from: &snapshot,
            to: &txn,
            copied: 0,
        };
        for_each_table(&mut copier)?;
        let copied = copier.copied;
        txn.commit()?;
        copied
    };
    std::fs::rename(&partial, destination)?;
    Ok(copied)
}

struct Copier<'a> {
    from: &'a ReadTransaction,
    to: &'a WriteTransaction,
    copied: u64,
}

impl TableVisitor for Copier<'_> {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError> {
        let source = self.from.open_table(table)?;
        let mut target = self.to.open_table(table)?;
        for entry in source.iter()? {
            let (key, value) = entry?;
            target.insert(key.value(), value.value())?;
            self.copied += 1;
        }
        Ok(())
    }
}
