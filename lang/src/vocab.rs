//! [`Vocab`]: a set of distinct identifiers with their counts and first location, laid out
//! so that a query touches a bounded number of them — the shared core of the workspace index
//! and of each document's identifier cache — and [`Vocab::search`], which finds and scores a
//! query's candidates.
//!
//! Layout: entries sorted by lowercase name (then name), so every case-insensitive prefix
//! match is one contiguous range found by binary search; and, per lowercase first char, a
//! bucket of the [`BUCKET_CAP`] most frequent entries starting with it, which is the fuzzy
//! candidate set. A search therefore scores at most `prefix_cap` prefix matches (the most
//! frequent ones when there are more) plus at most `BUCKET_CAP` fuzzy candidates, whatever
//! the vocabulary's size. What it deliberately misses: fuzzy matches whose first char differs
//! from the query's (`val` does not find `getValue`), and, in a prefix range larger than
//! `prefix_cap`, the less frequent names (the result says it is incomplete).
//!
//! Ranking and merging results from several vocabularies is `complete.rs`'s business.

use std::cell::RefCell;
use std::cmp::Ordering;

use nucleo_matcher::pattern::{Atom, AtomKind, CaseMatching, Normalization};
use nucleo_matcher::{Config, Matcher, Utf32Str};
use rustc_hash::FxHashMap;

/// How many entries each first-char bucket keeps (the most frequent).
pub const BUCKET_CAP: usize = 512;

/// One distinct identifier.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The identifier.
    pub name: Box<str>,
    /// Its lowercase form (the sort key) when that differs from `name`.
    lower: Option<Box<str>>,
    /// Whether `name` is ASCII (the fuzzy matcher takes it as it is, without converting).
    ascii: bool,
    /// How many times it occurs.
    pub count: u32,
    /// Where it occurs first: a file number (meaningful to the owner of the vocabulary)…
    pub file: u32,
    /// …and a zero-based line.
    pub line: u32,
}

impl Entry {
    /// An entry for `name` with `tally`'s count and location.
    pub fn new(name: Box<str>, tally: Tally) -> Self {
        // Most identifiers are lowercase already: no second string for those.
        let ascii = name.is_ascii();
        let lower = if ascii
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || !b.is_ascii_alphabetic())
        {
            None
        } else {
            Some(name.to_lowercase().into_boxed_str())
        };
        Entry {
            lower,
            ascii,
            name,
            count: tally.count,
            file: tally.file,
            line: tally.line,
        }
    }

    /// The lowercase form of the name (the sort key).
    pub fn lower(&self) -> &str {
        self.lower.as_deref().unwrap_or(&self.name)
    }

    /// The name as the fuzzy matcher reads it, converted into `buf` only when it is not ASCII.
    fn haystack<'a>(&'a self, buf: &'a mut Vec<char>) -> Utf32Str<'a> {
        if self.ascii {
            Utf32Str::Ascii(self.name.as_bytes())
        } else {
            Utf32Str::new(&self.name, buf)
        }
    }

    /// The sort order of [`Vocab::entries`]: lowercase name, then name.
    pub fn order(&self, other: &Entry) -> Ordering {
        self.lower()
            .cmp(other.lower())
            .then_with(|| self.name.cmp(&other.name))
    }
}

/// What the builder collects per identifier: count and first (file, line).
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    /// Occurrences.
    pub count: u32,
    /// File number of the first occurrence.
    pub file: u32,
    /// Line of the first occurrence.
    pub line: u32,
}

impl Tally {
    /// Counts one more occurrence at (`file`, `line`), keeping the earliest location.
    pub fn add(&mut self, file: u32, line: u32) {
        self.count = self.count.saturating_add(1);
        if (file, line) < (self.file, self.line) {
            self.file = file;
            self.line = line;
        }
    }

    /// Merges another tally of the same identifier.
    pub fn merge(&mut self, other: Tally) {
        self.count = self.count.saturating_add(other.count);
        if (other.file, other.line) < (self.file, self.line) {
            self.file = other.file;
            self.line = other.line;
        }
    }
}

/// Distinct identifiers, sorted for prefix search, with first-char buckets for fuzzy search.
#[derive(Debug, Default)]
pub struct Vocab {
    entries: Vec<Entry>,
    buckets: FxHashMap<char, Bucket>,
    occurrences: u64,
}

/// The fuzzy candidates for one lowercase first char.
#[derive(Debug, Default)]
struct Bucket {
    /// At most [`BUCKET_CAP`] entry indices, the most frequent first.
    ids: Box<[u32]>,
    /// Their names, then their lowercase names, back to back: the fuzzy pass reads these in
    /// order instead of chasing each entry's strings around the heap (on a large index that
    /// pass was bound by cache misses).
    text: Box<str>,
    /// Per id: (name start, name end, lowercase end) in `text`; the lowercase name starts where
    /// the name ends.
    spans: Box<[(u32, u32, u32)]>,
    /// Whether entries were left out.
    truncated: bool,
}

impl Bucket {
    fn new(ids: Vec<u32>, entries: &[Entry], truncated: bool) -> Self {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(ids.len());
        for &id in &ids {
            let e = &entries[id as usize];
            let start = text.len();
            text.push_str(&e.name);
            let name_end = text.len();
            text.push_str(e.lower());
            // A bucket holds at most BUCKET_CAP names of at most a few hundred bytes each.
            let pos = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            spans.push((pos(start), pos(name_end), pos(text.len())));
        }
        Self {
            ids: ids.into_boxed_slice(),
            text: text.into_boxed_str(),
            spans: spans.into_boxed_slice(),
            truncated,
        }
    }

    /// Entry index, name and lowercase name of each member, most frequent first.
    fn members(&self) -> impl Iterator<Item = (u32, &str, &str)> {
        self.ids
            .iter()
            .zip(self.spans.iter())
            .map(|(&id, &(a, b, c))| {
                let (a, b, c) = (a as usize, b as usize, c as usize);
                (
                    id,
                    self.text.get(a..b).unwrap_or(""),
                    self.text.get(b..c).unwrap_or(""),
                )
            })
    }
}

/// How well an entry matched a query; lower tiers rank first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The name equals the query.
    Exact = 0,
    /// The name starts with the query, case included.
    Prefix = 1,
    /// The name starts with the query ignoring case.
    PrefixIgnoreCase = 2,
    /// The query's chars occur in the name in order (same first char).
    Fuzzy = 3,
}

/// One entry found by [`Vocab::search`].
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Index into [`Vocab::entries`].
    pub entry: u32,
    /// The match kind.
    pub tier: Tier,
    /// The fuzzy matcher's score (higher is better).
    pub score: u16,
}

/// What [`Vocab::search`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// The scored candidates, unordered.
    pub hits: Vec<Hit>,
    /// Matches that exist but were not scored (prefix range or bucket past its cap).
    pub unscored: usize,
}

/// Orders entry indices by frequency (descending), then position (the sort order): the
/// order caps keep. Comparing positions, not names, keeps ties cheap.
fn by_frequency(entries: &[Entry], a: u32, b: u32) -> Ordering {
    entries[b as usize]
        .count
        .cmp(&entries[a as usize].count)
        .then(a.cmp(&b))
}

/// `s.starts_with(prefix)` without a `memcmp` call: the prefixes compared are a few bytes.
fn starts_with(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.bytes().zip(prefix.bytes()).all(|(a, b)| a == b)
}

/// Whether the bytes of `needle` occur in `haystack` in order (not necessarily adjacent).
fn is_subsequence(needle: &[u8], haystack: &[u8]) -> bool {
    let mut rest = haystack.iter();
    needle.iter().all(|n| rest.any(|h| h == n))
}

fn first_char(s: &str) -> Option<char> {
    s.chars().next()
}

impl Vocab {
    /// Builds a vocabulary from per-identifier tallies.
    pub fn build(tallies: impl IntoIterator<Item = (Box<str>, Tally)>) -> Self {
        let mut occurrences = 0u64;
        let mut entries: Vec<Entry> = tallies
            .into_iter()
            .map(|(name, t)| {
                occurrences += u64::from(t.count);
                Entry::new(name, t)
            })
            .collect();
        entries.sort_unstable_by(Entry::order);
        let mut groups: FxHashMap<char, Vec<u32>> = FxHashMap::default();
        for (i, e) in entries.iter().enumerate() {
            if let (Some(c), Ok(i)) = (first_char(e.lower()), u32::try_from(i)) {
                groups.entry(c).or_default().push(i);
            }
        }
        let buckets = groups
            .into_iter()
            .map(|(c, mut ids)| {
                let truncated = ids.len() > BUCKET_CAP;
                if truncated {
                    ids.select_nth_unstable_by(BUCKET_CAP, |&a, &b| by_frequency(&entries, a, b));
                    ids.truncate(BUCKET_CAP);
                }
                // Most frequent first: a one-char query takes its prefix matches from here.
                ids.sort_unstable_by(|&a, &b| by_frequency(&entries, a, b));
                (c, Bucket::new(ids, &entries, truncated))
            })
            .collect();
        Self {
            entries,
            buckets,
            occurrences,
        }
    }

    /// The entries, sorted by lowercase name.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of distinct identifiers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total occurrences counted.
    pub fn occurrences(&self) -> u64 {
        self.occurrences
    }

    /// The entries whose lowercase form starts with `lower_prefix`.
    pub fn prefix_range(&self, lower_prefix: &str) -> std::ops::Range<usize> {
        prefix_range(&self.entries, lower_prefix)
    }

    /// The entry named exactly `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        let lower = name.to_lowercase();
        self.entries[self.prefix_range(&lower)]
            .iter()
            .take_while(|e| e.lower() == lower)
            .find(|e| *e.name == *name)
    }

    /// Finds and scores the candidates for `query` (non-empty): every entry whose name starts
    /// with it ignoring case (at most `prefix_cap` of them, the most frequent, plus every
    /// case-insensitive exact match), and the entries of its first char's bucket that
    /// fuzzy-match it.
    pub fn search(&self, query: &str, prefix_cap: usize) -> Found {
        self.search_with(query, prefix_cap, true)
    }

    /// [`search`](Self::search) without the matcher's scores where it can do without them:
    /// every hit is found and has its tier, but its `score` is 0 unless finding it took the
    /// matcher (a fuzzy match of a non-ASCII query or name). For callers that score only the
    /// candidates that can still rank (see [`Scorer`]).
    pub fn candidates(&self, query: &str, prefix_cap: usize) -> Found {
        self.search_with(query, prefix_cap, false)
    }

    fn search_with(&self, query: &str, prefix_cap: usize, scored: bool) -> Found {
        let mut found = Found::default();
        let lower = query.to_lowercase();
        let Some(first) = first_char(&lower) else {
            return found;
        };
        let bucket = self.buckets.get(&first);
        // A one-char query's prefix range is its whole first-char group, whose most frequent
        // members the bucket already holds in order: no pass over the range (the largest
        // ranges are exactly these).
        let one_char = lower.chars().nth(1).is_none();
        let sorted = bucket.filter(|_| one_char).map(|b| &*b.ids);
        let ids = prefix_ids(&self.entries, &lower, prefix_cap, sorted, &mut found);
        let fuzzy = bucket.map(|b| (b.truncated, b.members()));
        score(query, &lower, &self.entries, ids, fuzzy, scored, &mut found);
        found
    }
}

/// The entries of sorted `entries` whose lowercase form starts with `lower_prefix`.
pub fn prefix_range(entries: &[Entry], lower_prefix: &str) -> std::ops::Range<usize> {
    let start = entries.partition_point(|e| e.lower() < lower_prefix);
    let len = entries[start..].partition_point(|e| e.lower().starts_with(lower_prefix));
    start..start + len
}

/// [`Vocab::search`] over a small set of entries sorted by [`Entry::order`], without buckets:
/// the fuzzy candidates are the (at most [`BUCKET_CAP`] most frequent) entries with the
/// query's first char, the set a bucket would hold. For a document's added words, which
/// change at every keystroke and are too few to be worth indexing. Scores as
/// [`Vocab::search`] does when `scored`, else as [`Vocab::candidates`].
pub fn search_sorted(entries: &[Entry], query: &str, prefix_cap: usize, scored: bool) -> Found {
    let mut found = Found::default();
    let lower = query.to_lowercase();
    let Some(first) = first_char(&lower) else {
        return found;
    };
    let ids = prefix_ids(entries, &lower, prefix_cap, None, &mut found);
    let mut buf = [0u8; 4];
    let group = prefix_range(entries, first.encode_utf8(&mut buf));
    let mut members: Vec<u32> = group.filter_map(|i| u32::try_from(i).ok()).collect();
    let truncated = members.len() > BUCKET_CAP;
    if truncated {
        members.select_nth_unstable_by(BUCKET_CAP, |&a, &b| by_frequency(entries, a, b));
        members.truncate(BUCKET_CAP);
    }
    let fuzzy = members.iter().map(|&id| {
        let e = &entries[id as usize];
        (id, &*e.name, e.lower())
    });
    score(
        query,
        &lower,
        entries,
        ids,
        Some((truncated, fuzzy)),
        scored,
        &mut found,
    );
    found
}

/// The prefix candidates of `lower` (the lowercase query) in sorted `entries`: every
/// case-insensitive exact match, and of the rest of the prefix range at most `prefix_cap`, the
/// most frequent (taken from `by_frequency`, the first-char group most frequent first, when it
/// is given and long enough). Counts the ones left out in `found.unscored`.
fn prefix_ids(
    entries: &[Entry],
    lower: &str,
    prefix_cap: usize,
    by_frequency_order: Option<&[u32]>,
    found: &mut Found,
) -> Vec<u32> {
    let range = prefix_range(entries, lower);
    let mut ids: Vec<u32> = Vec::new();
    // Case-insensitive exact matches sort first in the range; always keep them.
    let exact = entries[range.clone()]
        .iter()
        .take_while(|e| e.lower() == lower)
        .count();
    let exact_ids = range.start..range.start + exact;
    let rest = exact_ids.end..range.end;
    ids.extend(exact_ids.clone().filter_map(|i| u32::try_from(i).ok()));
    if rest.len() <= prefix_cap {
        ids.extend(rest.filter_map(|i| u32::try_from(i).ok()));
        return ids;
    }
    found.unscored += rest.len() - prefix_cap;
    match by_frequency_order.filter(|o| o.len() >= prefix_cap + exact) {
        Some(order) => ids.extend(
            order
                .iter()
                .copied()
                .filter(|&i| !exact_ids.contains(&(i as usize)))
                .take(prefix_cap),
        ),
        None => {
            let mut rest_ids: Vec<u32> = rest.filter_map(|i| u32::try_from(i).ok()).collect();
            rest_ids.select_nth_unstable_by(prefix_cap, |&a, &b| by_frequency(entries, a, b));
            rest_ids.truncate(prefix_cap);
            ids.extend(rest_ids);
        }
    }
    ids
}

/// Scores the prefix candidates `ids` of `entries` and, for a query of two chars or more, the
/// fuzzy candidates `fuzzy` (whether some were left out; entry index, name and lowercase
/// name of each) that are not prefix matches, into `found` — with the matcher's scores when
/// `scored`, else with 0 wherever the match is known without the matcher.
fn score<'a>(
    query: &str,
    lower: &str,
    entries: &[Entry],
    ids: Vec<u32>,
    fuzzy: Option<(bool, impl Iterator<Item = (u32, &'a str, &'a str)>)>,
    scored: bool,
    found: &mut Found,
) {
    MATCHER.with(|m| {
        let mut m = m.borrow_mut();
        let FuzzyMatcher { matcher, buf } = &mut *m;
        let atom = Atom::new(
            query,
            CaseMatching::Ignore,
            Normalization::Smart,
            AtomKind::Fuzzy,
            false,
        );
        for id in ids {
            let e = &entries[id as usize];
            let score = if scored {
                atom.score(e.haystack(buf), matcher).unwrap_or(0)
            } else {
                0
            };
            let tier = if !starts_with(&e.name, query) {
                Tier::PrefixIgnoreCase
            } else if e.name.len() == query.len() {
                Tier::Exact
            } else {
                Tier::Prefix
            };
            found.hits.push(Hit {
                entry: id,
                tier,
                score,
            });
        }
        if lower.chars().count() < 2 {
            return; // one char: every fuzzy match is a prefix match
        }
        if let Some((truncated, members)) = fuzzy {
            if truncated {
                found.unscored += 1; // there may be fuzzy matches it did not keep
            }
            let ascii_query = lower.is_ascii();
            for (id, name, name_lower) in members {
                if starts_with(name_lower, lower) {
                    continue; // a prefix match, handled above
                }
                // Most candidates do not match at all. For ASCII on both sides, matching
                // ignoring case is exactly "the query's lowercase bytes occur in order in the
                // lowercase name": checked here in a few instructions, where the matcher's
                // own prefilter costs a call and a `memchr` per query char.
                let haystack = if ascii_query && name.is_ascii() {
                    if !is_subsequence(lower.as_bytes(), name_lower.as_bytes()) {
                        continue;
                    }
                    if !scored {
                        found.hits.push(Hit {
                            entry: id,
                            tier: Tier::Fuzzy,
                            score: 0,
                        });
                        continue;
                    }
                    Utf32Str::Ascii(name.as_bytes())
                } else {
                    Utf32Str::new(name, buf)
                };
                if let Some(score) = atom.score(haystack, matcher) {
                    found.hits.push(Hit {
                        entry: id,
                        tier: Tier::Fuzzy,
                        score,
                    });
                }
            }
        }
    });
}

/// Scores names against one query with the fuzzy matcher, as [`Vocab::search`] does: for
/// scoring the candidates [`Vocab::candidates`] found once each, and only those that can rank.
pub struct Scorer {
    atom: Atom,
}

impl Scorer {
    /// A scorer for `query`.
    pub fn new(query: &str) -> Self {
        Self {
            atom: Atom::new(
                query,
                CaseMatching::Ignore,
                Normalization::Smart,
                AtomKind::Fuzzy,
                false,
            ),
        }
    }

    /// The matcher's score of `name` (0 when it does not match).
    pub fn score(&self, name: &str) -> u16 {
        MATCHER.with(|m| {
            let mut m = m.borrow_mut();
            let FuzzyMatcher { matcher, buf } = &mut *m;
            let haystack = if name.is_ascii() {
                Utf32Str::Ascii(name.as_bytes())
            } else {
                Utf32Str::new(name, buf)
            };
            self.atom.score(haystack, matcher).unwrap_or(0)
        })
    }
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").finish_non_exhaustive()
    }
}

/// A fuzzy matcher and its scratch buffer; one per thread, because building a matcher
/// allocates its scoring matrix.
struct FuzzyMatcher {
    matcher: Matcher,
    buf: Vec<char>,
}

thread_local! {
    static MATCHER: RefCell<FuzzyMatcher> = RefCell::new(FuzzyMatcher {
        matcher: Matcher::new(Config::DEFAULT),
        buf: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(words: &[(&str, u32)]) -> Vocab {
        let mut t = FxHashMap::default();
        for (i, &(w, n)) in words.iter().enumerate() {
            t.insert(
                Box::from(w),
                Tally {
                    count: n,
                    file: 0,
                    line: i as u32,
                },
            );
        }
        Vocab::build(t)
    }

    #[test]
    fn prefix_range_ignores_case() {
        let v = vocab(&[
            ("Foo", 1),
            ("foobar", 1),
            ("fox", 1),
            ("bar", 1),
            ("FOOD", 1),
        ]);
        let names: Vec<&str> = v.entries()[v.prefix_range("foo")]
            .iter()
            .map(|e| &*e.name)
            .collect();
        assert_eq!(names, ["Foo", "foobar", "FOOD"]);
        assert!(v.prefix_range("zzz").is_empty());
        assert_eq!(v.get("FOOD").map(|e| e.line), Some(4));
        assert!(v.get("food").is_none());
    }

    #[test]
    fn search_tiers() {
        let v = vocab(&[
            ("get", 1),
            ("getValue", 3),
            ("GetX", 1),
            ("gadget", 1),
            ("other", 9),
        ]);
        let f = v.search("get", 100);
        let mut tiers: Vec<(&str, Tier)> = f
            .hits
            .iter()
            .map(|h| (&*v.entries()[h.entry as usize].name, h.tier))
            .collect();
        tiers.sort();
        assert_eq!(
            tiers,
            [
                ("GetX", Tier::PrefixIgnoreCase),
                ("gadget", Tier::Fuzzy),
                ("get", Tier::Exact),
                ("getValue", Tier::Prefix),
            ]
        );
    }

    #[test]
    fn one_char_queries_take_the_same_names_from_the_bucket() {
        // 600 names starting with "q" (more than the cap and than a bucket), counts varied.
        let words: Vec<(String, u32)> = (0..600u32)
            .map(|i| (format!("q{i:03}x"), (i * 7919) % 97))
            .collect();
        let borrowed: Vec<(&str, u32)> = words.iter().map(|(w, n)| (w.as_str(), *n)).collect();
        let v = vocab(&borrowed);
        let names = |f: &Found| {
            let mut n: Vec<String> = f
                .hits
                .iter()
                .map(|h| v.entries()[h.entry as usize].name.to_string())
                .collect();
            n.sort();
            n
        };
        // "q" goes through the bucket; "Q" too; the reference picks by frequency directly.
        let got = v.search("q", 100);
        let mut want: Vec<u32> = (0..600).collect();
        want.sort_by(|&a, &b| by_frequency(v.entries(), a, b));
        let mut want: Vec<String> = want[..100]
            .iter()
            .map(|&i| v.entries()[i as usize].name.to_string())
            .collect();
        want.sort();
        assert_eq!(names(&got), want);
        assert_eq!(got.unscored, 500);
        assert_eq!(names(&v.search("Q", 100)), want);
    }

    #[test]
    fn prefix_cap_keeps_the_most_frequent_and_exact() {
        let v = vocab(&[("ab", 1), ("abc", 5), ("abd", 1), ("abe", 7)]);
        let f = v.search("ab", 2);
        let mut names: Vec<&str> = f
            .hits
            .iter()
            .map(|h| &*v.entries()[h.entry as usize].name)
            .collect();
        names.sort();
        assert_eq!(names, ["ab", "abc", "abe"]);
        assert_eq!(f.unscored, 1);
    }

    proptest::proptest! {
        /// The ASCII shortcut of the fuzzy pass rejects exactly what the matcher rejects.
        #[test]
        fn subsequence_agrees_with_the_matcher(
            query in "[abAB_1]{1,4}",
            name in "[abcABC_1]{1,12}",
        ) {
            let atom = Atom::new(
                &query,
                CaseMatching::Ignore,
                Normalization::Smart,
                AtomKind::Fuzzy,
                false,
            );
            let mut matcher = Matcher::new(Config::DEFAULT);
            let matched = atom.score(Utf32Str::Ascii(name.as_bytes()), &mut matcher).is_some();
            let lower = query.to_lowercase();
            proptest::prop_assert_eq!(
                is_subsequence(lower.as_bytes(), name.to_lowercase().as_bytes()),
                matched
            );
        }
    }
}
