//! Interned strings for the text columns of the schema (countries, cities, AS names, network
//! tags, interface names).
//!
//! A [`crate::FlowRecord`] stays `Copy` and heap-free: a text field holds a `u32` symbol, and
//! the process-wide table maps symbols to strings. Symbol 0 is always the empty string (the
//! field is absent). Symbols are process-local: the store holds the strings themselves
//! (dictionary-encoded Parquet columns), and reading a file interns its dictionary.
//!
//! The table is append-only and bounded ([`MAX_BYTES`]): text comes from the configured
//! databases and from stored files, so it is naturally small, but a hostile or huge source
//! cannot grow it without limit; past the bound, [`intern`] returns 0 and counts the overflow.
//!
//! ```
//! use flowsight_schema::sym;
//! let us = sym::intern("US");
//! assert_eq!(sym::resolve(us), "US");
//! assert_eq!(sym::intern("US"), us);
//! assert_eq!(sym::lookup("no such string anywhere"), None);
//! assert_eq!(sym::resolve(0), "");
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock, RwLockReadGuard};

/// Upper bound of the bytes held by the table (strings plus bookkeeping).
pub const MAX_BYTES: usize = 256 << 20;

struct Table {
    strings: Vec<&'static str>,
    ids: HashMap<&'static str, u32>,
    bytes: usize,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    let mut ids = HashMap::new();
    ids.insert("", 0);
    RwLock::new(Table {
        strings: vec![""],
        ids,
        bytes: 0,
    })
});

static OVERFLOWS: AtomicU64 = AtomicU64::new(0);

fn read() -> RwLockReadGuard<'static, Table> {
    // A panic while holding the lock cannot leave the table inconsistent (pushes are
    // single statements), so a poisoned lock is still safe to use.
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

/// The symbol of `s`, adding it to the table when new (0 when the table is full).
pub fn intern(s: &str) -> u32 {
    if s.is_empty() {
        return 0;
    }
    if let Some(&id) = read().ids.get(s) {
        return id;
    }
    let mut t = TABLE.write().unwrap_or_else(|e| e.into_inner());
    if let Some(&id) = t.ids.get(s) {
        return id;
    }
    let cost = s.len() + 48;
    if t.bytes + cost > MAX_BYTES || t.strings.len() >= u32::MAX as usize {
        OVERFLOWS.fetch_add(1, Ordering::Relaxed);
        return 0;
    }
    // Leaked on purpose: symbols live as long as the process and the table is bounded.
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    let id = t.strings.len() as u32;
    t.strings.push(leaked);
    t.ids.insert(leaked, id);
    t.bytes += cost;
    id
}

/// The symbol of `s` if it was interned, without adding it (for filters: a string never
/// seen matches nothing).
pub fn lookup(s: &str) -> Option<u32> {
    read().ids.get(s).copied()
}

/// The string of a symbol ("" for 0 and for unknown symbols).
pub fn resolve(id: u32) -> &'static str {
    read().strings.get(id as usize).copied().unwrap_or("")
}

/// Resolves many symbols under one lock.
pub struct Resolver(RwLockReadGuard<'static, Table>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("symbols", &self.0.strings.len())
            .finish()
    }
}

impl Resolver {
    /// Takes the table's read lock for a run of lookups.
    pub fn new() -> Resolver {
        Resolver(read())
    }

    /// The string of `id` ("" when unknown).
    #[inline]
    pub fn get(&self, id: u32) -> &'static str {
        self.0.strings.get(id as usize).copied().unwrap_or("")
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new()
    }
}

/// How many strings were refused because the table was full.
pub fn overflows() -> u64 {
    OVERFLOWS.load(Ordering::Relaxed)
}

/// Number of symbols in the table (including the empty string).
pub fn len() -> usize {
    read().strings.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_empty_is_zero() {
        let a = intern("CLOUDFLARENET");
        let b = intern("GOOGLE");
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(intern("CLOUDFLARENET"), a);
        assert_eq!(resolve(a), "CLOUDFLARENET");
        assert_eq!(intern(""), 0);
        assert_eq!(resolve(u32::MAX), "");
        assert_eq!(lookup("GOOGLE"), Some(b));
        let r = Resolver::new();
        assert_eq!(r.get(b), "GOOGLE");
    }
}
