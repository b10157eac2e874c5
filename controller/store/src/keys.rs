//! Limits and key helpers shared by every backend, so that both refuse the same
//! requests with the same error.

use crate::error::StoreError;
use crate::model::{Op, Txn};

/// Longest key accepted. etcd accepts more, but no yunshu key needs it and a bound
/// keeps pagination cursors small.
pub const MAX_KEY_BYTES: usize = 4096;
/// Largest value accepted: below etcd's default 1.5 MiB request limit, so that a
/// value that fits one backend fits the other.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most operations in one transaction: etcd's default `--max-txn-ops` is 128.
pub const MAX_TXN_OPS: usize = 128;

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument("key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_value(key: &str, value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "value for {key} is {} bytes; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// Validates a whole transaction before anything is written, so a bad one changes
/// nothing on either backend.
pub(crate) fn check_txn(txn: &Txn) -> Result<(), StoreError> {
    if txn.ops.len() > MAX_TXN_OPS {
        return Err(StoreError::InvalidArgument(format!(
            "transaction has {} operations; the limit is {MAX_TXN_OPS}",
            txn.ops.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(txn.ops.len());
    for op in &txn.ops {
        let key = op.key();
        check_key(key)?;
        if let Op::Put { value, .. } = op {
            check_value(key, value)?;
        }
        // etcd refuses a key written twice in one transaction; refuse it everywhere.
        if !seen.insert(key) {
            return Err(StoreError::InvalidArgument(format!(
                "key {key} appears twice in one transaction"
            )));
        }
    }
    for cmp in &txn.compares {
        check_key(cmp.key())?;
    }
    Ok(())
}

/// The first key after every key that starts with `prefix` (etcd's range end).
/// `None` means "to the end of the key space".
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn txn_with_duplicate_key_is_refused() {
        let txn = Txn::new().put("k", b"1".to_vec()).delete("k");
        assert!(matches!(
            check_txn(&txn),
            Err(StoreError::InvalidArgument(_))
        ));
    }
}
