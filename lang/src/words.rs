//! [`DocWords`]: an open document's identifiers, kept up to date edit by edit so that a
//! keystroke in a large document does not rescan it.
//!
//! A full scan builds a `base` [`Vocab`] (sorted, searchable); after that each ranged edit
//! rescans only the identifiers it touches — the edited span widened to the identifier
//! characters on either side, before and after the edit — and records the difference in
//! `delta` (name → change in count). Identifiers never contain a line break or any other
//! non-identifier char, so the widened span holds every identifier the edit could create,
//! destroy or change, and base + delta is exactly what a full scan would count. Once `delta`
//! names more than [`REBUILD_AFTER`] identifiers the next completion rescans fully and starts a
//! new base; a whole-text change drops the words (rescanned on next use).
//!
//! What it leaves out: first-line locations are those of the base scan (documents show counts,
//! not lines).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use ropey::Rope;
use rustc_hash::FxHashMap;

use crate::ident::{self, is_ident_continue};
use crate::vocab::{Tally, Vocab};

/// `delta` sizes past which a rescan is cheaper than carrying the difference.
pub const REBUILD_AFTER: usize = 4096;

/// Changes in identifier counts, by name.
pub type Delta = FxHashMap<Box<str>, i64>;

/// The identifiers of one document text: a scanned base and the edits since.
#[derive(Debug, Clone, Default)]
pub struct DocWords {
    base: Arc<Vocab>,
    delta: Delta,
}

/// The identifiers of `text`, counted, with the first line of each.
pub fn scan_vocab(text: &str) -> Vocab {
    let mut tallies: FxHashMap<&str, Tally> =
        FxHashMap::with_capacity_and_hasher(text.len() / 64, Default::default());
    ident::scan(text, |name, line| {
        tallies
            .entry(name)
            .and_modify(|t| t.add(0, line))
            .or_insert(Tally {
                count: 1,
                file: 0,
                line,
            });
    });
    Vocab::build(tallies.into_iter().map(|(name, t)| (Box::from(name), t)))
}

impl DocWords {
    /// Scans all of `rope`.
    pub fn scan(rope: &Rope) -> Self {
        // Ropey keeps text in chunks that an identifier may straddle; one contiguous copy is
        // simpler and costs a memcpy of the text, next to scanning it.
        let text: Cow<'_, str> = rope.slice(..).into();
        Self {
            base: Arc::new(scan_vocab(&text)),
            delta: Delta::default(),
        }
    }

    /// Whether a full rescan is due.
    pub fn is_stale(&self) -> bool {
        self.delta.len() > REBUILD_AFTER
    }

    /// The scanned base (counts there do not include `delta`).
    pub fn base(&self) -> &Vocab {
        &self.base
    }

    /// The change in `name`'s count since the base scan.
    pub fn delta(&self, name: &str) -> i64 {
        self.delta.get(name).copied().unwrap_or(0)
    }

    /// How many times `name` occurs now.
    pub fn count(&self, name: &str) -> u64 {
        let base = self.base.get(name).map_or(0, |e| i64::from(e.count));
        u64::try_from(base + self.delta(name)).unwrap_or(0)
    }

    /// The identifiers that occur now but not in the base, as a small vocabulary of their own.
    pub fn added(&self) -> Vocab {
        Vocab::build(self.delta.iter().filter_map(|(name, &d)| {
            if d <= 0 || self.base.get(name).is_some() {
                return None;
            }
            let count = u32::try_from(d).unwrap_or(u32::MAX);
            Some((
                name.clone(),
                Tally {
                    count,
                    file: 0,
                    line: 0,
                },
            ))
        }))
    }

    /// Adds the changes an edit recorded.
    pub fn apply(&mut self, pending: Delta) {
        for (name, d) in pending {
            if d == 0 {
                continue;
            }
            match self.delta.entry(name) {
                Entry::Occupied(mut o) => {
                    *o.get_mut() += d;
                    if *o.get() == 0 {
                        // Back to the base count: dropped, so `delta` stays small.
                        o.remove();
                    }
                }
                Entry::Vacant(v) => {
                    v.insert(d);
                }
            }
        }
    }

    /// Every identifier's current count (tests).
    pub fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for e in self.base.entries() {
            let n = self.count(&e.name);
            if n > 0 {
                out.insert(e.name.to_string(), n);
            }
        }
        for e in self.added().entries() {
            out.insert(e.name.to_string(), u64::from(e.count));
        }
        out
    }
}

/// The char span `start..end` widened to the identifier chars on both sides.
pub fn widen(rope: &Rope, start: usize, end: usize) -> (usize, usize) {
    let left = rope
        .chars_at(start)
        .reversed()
        .take_while(|&c| is_ident_continue(c))
        .count();
    let right = rope
        .chars_at(end)
        .take_while(|&c| is_ident_continue(c))
        .count();
    (start - left, end + right)
}

/// Counts the identifiers of `rope[start..end]` into `pending` with `sign` (+1 or -1). The span
/// must start and end at a non-identifier char or an end of the text (see [`widen`]).
pub fn tally(rope: &Rope, start: usize, end: usize, sign: i64, pending: &mut Delta) {
    let text: Cow<'_, str> = rope.slice(start..end).into();
    ident::scan(&text, |name, _| match pending.get_mut(name) {
        Some(d) => *d += sign,
        None => {
            pending.insert(Box::from(name), sign);
        }
    });
}
