//! [`DocWords`]: an open document's identifiers, kept up to date edit by edit so that a
//! keystroke in a large document does not rescan it.
//!
//! A full scan builds a `base` [`Vocab`] (sorted, searchable); after that each ranged edit
//! rescans only the identifiers it touches — the edited span widened to the identifier
//! characters on either side, before and after the edit — and records the difference in
//! `delta` (name → change in count). Identifiers never contain a line break or any other
//! non-identifier char, so the widened span holds every identifier the edit could create,
//! destroy or change, and base + delta is exactly what a full scan would count. The
//! identifiers that occur now but not in the base — the words typed since the scan — are kept
//! apart too, in `added`, sorted like a [`Vocab`]'s entries and updated by the same edits (one
//! lookup in the base per identifier an edit changes), so that a completion reads them as
//! they are instead of collecting them from `delta` at every keystroke. Once `delta`
//! names more than [`REBUILD_AFTER`] identifiers the next completion rescans fully and starts a
//! new base; a whole-text change drops the words (rescanned on next use).
//!
//! What it leaves out: first-line locations are those of the base scan (documents show counts,
//! not lines).

use std::borrow::Cow;
use std::collections::hash_map::Entry as HashEntry;
use std::sync::Arc;

use ropey::Rope;
use rustc_hash::FxHashMap;

use crate::ident::{self, is_ident_continue};
use crate::vocab::{Entry, Tally, Vocab};

/// `delta` sizes past which a rescan is cheaper than carrying the difference.
pub const REBUILD_AFTER: usize = 4096;

/// Changes in identifier counts, by name.
pub type Delta = FxHashMap<Box<str>, i64>;

/// The identifiers of one document text: a scanned base and the edits since.
#[derive(Debug, Clone, Default)]
pub struct DocWords {
    base: Arc<Vocab>,
    delta: Delta,
    /// The identifiers not in `base` whose count is above zero now, sorted by
    /// [`Entry::order`], each with its current count (its `delta`), file 0 and line 0.
    added: Vec<Entry>,
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
            added: Vec::new(),
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

    /// The identifiers that occur now but not in the base, with their counts (file 0, line
    /// 0), sorted by [`Entry::order`] — for [`search_sorted`](crate::vocab::search_sorted).
    pub fn added(&self) -> &[Entry] {
        &self.added
    }

    /// [`added`](Self::added) computed from `delta` and the base, as it was before it was
    /// kept up to date (tests: the two must agree).
    #[doc(hidden)]
    pub fn added_from_delta(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .delta
            .iter()
            .filter(|&(name, &d)| d > 0 && self.base.get(name).is_none())
            .map(|(name, &d)| Entry::new(name.clone(), added_tally(d)))
            .collect();
        out.sort_unstable_by(Entry::order);
        out
    }

    /// Adds the changes an edit recorded.
    pub fn apply(&mut self, pending: Delta) {
        for (name, d) in pending {
            if d == 0 {
                continue;
            }
            let now = match self.delta.entry(name) {
                HashEntry::Occupied(mut o) => {
                    *o.get_mut() += d;
                    let now = *o.get();
                    if now == 0 {
                        // Back to the base count: dropped, so `delta` stays small.
                        let (name, _) = o.remove_entry();
                        self.update_added(name, 0);
                        continue;
                    }
                    let name = o.key().clone();
                    (name, now)
                }
                HashEntry::Vacant(v) => {
                    let name = v.key().clone();
                    v.insert(d);
                    (name, d)
                }
            };
            self.update_added(now.0, now.1);
        }
    }

    /// Records that `name`'s count has changed by `delta` since the base scan: in `added`
    /// when it is not in the base and occurs now, out of it otherwise.
    fn update_added(&mut self, name: Box<str>, delta: i64) {
        if self.base.get(&name).is_some() {
            return;
        }
        let entry = Entry::new(name, added_tally(delta));
        match self.added.binary_search_by(|e| e.order(&entry)) {
            Ok(i) if delta > 0 => self.added[i].count = entry.count,
            Ok(i) => {
                self.added.remove(i);
            }
            Err(i) if delta > 0 => self.added.insert(i, entry),
            Err(_) => {}
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
        for e in &self.added {
            out.insert(e.name.to_string(), u64::from(e.count));
        }
        out
    }
}

/// The tally of an added identifier whose count went up by `delta` (at least 0).
fn added_tally(delta: i64) -> Tally {
    Tally {
        count: u32::try_from(delta.max(0)).unwrap_or(u32::MAX),
        file: 0,
        line: 0,
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
