//! Ranking: turns what [`Vocab::search`](crate::vocab::Vocab::search) found in the open document and in the workspace index
//! into `complete` items, and what it found in the index into `symbols` results.
//!
//! Order: match tier (exact, prefix with case, prefix ignoring case, fuzzy), then the fuzzy
//! matcher's score, then frequency, then the label — a total order, so results are
//! deterministic. An identifier found in both places is one item from the document, its
//! frequency the sum of both counts. Rules for `complete`: an empty prefix gives no items; a
//! candidate equal to the prefix is not offered; nor is the whole word at the cursor when its
//! only occurrence is the one being typed (once in the document, not in the index).

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use crate::api::{CompletionItem, Source, Symbol};
use crate::index::Index;
use crate::vocab::{Scorer, Tier, search_sorted};
use crate::words::DocWords;

/// Prefix matches scored per vocabulary for `complete` (the most frequent when more match).
pub const COMPLETE_PREFIX_CAP: usize = 256;
/// Prefix matches scored for `symbols`.
pub const SYMBOLS_PREFIX_CAP: usize = 2048;

struct Candidate<'a> {
    label: &'a str,
    tier: Tier,
    score: u16,
    count: u64,
    doc_count: u64,
    /// First workspace location (file, line), when the index has it.
    workspace: Option<(u32, u32)>,
}

fn rank(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    a.tier
        .cmp(&b.tier)
        .then_with(|| b.score.cmp(&a.score))
        .then_with(|| b.count.cmp(&a.count))
        .then_with(|| a.label.cmp(b.label))
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// Keeps the best `limit` of `v` in rank order.
fn best<T>(v: &mut Vec<T>, limit: usize, cmp: impl Fn(&T, &T) -> Ordering) {
    if v.len() > limit && limit > 0 {
        v.select_nth_unstable_by(limit - 1, &cmp);
    }
    v.truncate(limit);
    v.sort_unstable_by(cmp);
}

/// Completion items for `prefix` (typed before the cursor, which sits in `word`) from the
/// document's identifiers and the workspace index; and whether more matched than returned.
pub(crate) fn complete(
    doc: &DocWords,
    index: &Index,
    prefix: &str,
    word: &str,
    limit: usize,
) -> (Vec<CompletionItem>, bool) {
    complete_with(doc, index, prefix, word, limit, false)
}

/// [`complete`], scoring every candidate when `score_all` (tests: the results must not change).
fn complete_with(
    doc: &DocWords,
    index: &Index,
    prefix: &str,
    word: &str,
    limit: usize,
    score_all: bool,
) -> (Vec<CompletionItem>, bool) {
    if prefix.is_empty() {
        return (Vec::new(), false);
    }
    // The document's words: the scanned base with its counts corrected by the edits since,
    // and the words the edits added.
    let base = doc.base();
    // Found unscored: tier and score depend only on the name and the prefix, so each label
    // is scored once, below, and only if its tier can still reach the best `limit`.
    let in_base = base.candidates(prefix, COMPLETE_PREFIX_CAP);
    let added = doc.added();
    let in_added = search_sorted(added, prefix, COMPLETE_PREFIX_CAP, false);
    let ws = index.vocab();
    let in_ws = ws.candidates(prefix, COMPLETE_PREFIX_CAP);
    let mut by_label: FxHashMap<&str, Candidate<'_>> = FxHashMap::with_capacity_and_hasher(
        in_base.hits.len() + in_added.hits.len() + in_ws.hits.len(),
        Default::default(),
    );
    let doc_hits = in_base
        .hits
        .iter()
        .map(|h| {
            (
                &base.entries()[h.entry as usize],
                h,
                doc.delta(&base.entries()[h.entry as usize].name),
            )
        })
        .chain(
            in_added
                .hits
                .iter()
                .map(|h| (&added[h.entry as usize], h, 0)),
        );
    for (e, h, delta) in doc_hits {
        let Ok(count) = u64::try_from(i64::from(e.count) + delta) else {
            continue;
        };
        if count == 0 {
            continue; // every occurrence was edited away
        }
        by_label.insert(
            &e.name,
            Candidate {
                label: &e.name,
                tier: h.tier,
                score: h.score,
                count,
                doc_count: count,
                workspace: None,
            },
        );
    }
    for h in &in_ws.hits {
        let e = &ws.entries()[h.entry as usize];
        by_label
            .entry(&e.name)
            .and_modify(|c| {
                c.count += u64::from(e.count);
                c.workspace = Some((e.file, e.line));
            })
            .or_insert(Candidate {
                label: &e.name,
                tier: h.tier,
                score: h.score,
                count: u64::from(e.count),
                doc_count: 0,
                workspace: Some((e.file, e.line)),
            });
    }
    by_label.remove(prefix);
    if by_label
        .get(word)
        .is_some_and(|c| c.doc_count <= 1 && c.workspace.is_none())
    {
        by_label.remove(word);
    }
    let matched = by_label.len() + in_base.unscored + in_added.unscored + in_ws.unscored;
    let mut cands: Vec<Candidate<'_>> = by_label.into_values().collect();
    // Every candidate of a tier worse than the first `limit` candidates' worst ranks below
    // all of them whatever its score: those need no score.
    let mut per_tier = [0usize; 4];
    for c in &cands {
        per_tier[c.tier as usize] += 1;
    }
    let mut seen = 0;
    let scored_tiers = per_tier
        .iter()
        .position(|&n| {
            seen += n;
            seen >= limit
        })
        .filter(|_| !score_all)
        .unwrap_or(per_tier.len() - 1);
    let scorer = Scorer::new(prefix);
    for c in cands.iter_mut().filter(|c| c.tier as usize <= scored_tiers) {
        c.score = scorer.score(c.label);
    }
    best(&mut cands, limit, rank);
    let incomplete = matched > cands.len();
    let items = cands
        .into_iter()
        .map(|c| {
            // Built by hand: `format!` cost ~7 % of a completion (50 items, two each).
            let (source, detail) = match (c.doc_count, c.workspace) {
                (0, Some((file, line))) => {
                    let path = index.display_path(file);
                    let mut d = String::with_capacity(path.len() + 11);
                    d.push_str(path);
                    d.push(':');
                    push_decimal(&mut d, u64::from(line) + 1);
                    (Source::Workspace, d)
                }
                (n, _) => {
                    let mut d = String::with_capacity(32);
                    push_decimal(&mut d, n);
                    d.push_str(" in document");
                    (Source::Document, d)
                }
            };
            CompletionItem {
                label: c.label.to_owned(),
                score: u32::from(c.score),
                source,
                detail: Some(detail),
            }
        })
        .collect();
    (items, incomplete)
}

/// The index's identifiers matching `query`, best first (an exact name first).
pub(crate) fn symbols(index: &Index, query: &str, limit: usize) -> Vec<Symbol> {
    if query.is_empty() {
        return Vec::new();
    }
    let ws = index.vocab();
    let found = ws.search(query, SYMBOLS_PREFIX_CAP);
    let mut cands: Vec<Candidate<'_>> = found
        .hits
        .iter()
        .map(|h| {
            let e = &ws.entries()[h.entry as usize];
            Candidate {
                label: &e.name,
                tier: h.tier,
                score: h.score,
                count: u64::from(e.count),
                doc_count: 0,
                workspace: Some((e.file, e.line)),
            }
        })
        .collect();
    best(&mut cands, limit, rank);
    cands
        .into_iter()
        .filter_map(|c| {
            let (file, line) = c.workspace?;
            Some(Symbol {
                name: c.label.to_owned(),
                uri: index.file_uri(file),
                line,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;

    fn words() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("get"),
                Just("Get"),
                Just("ge"),
                Just("gadget"),
                Just("_"),
                Just("Value"),
                Just("value"),
                Just("set"),
                Just("size"),
                Just("ß"),
                Just("é"),
                Just("x"),
                Just("1"),
                Just(" "),
                Just(" "),
                Just("\n"),
            ],
            0..60,
        )
        .prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Scoring only the tiers that can reach the best `limit` gives what scoring every
        /// candidate gives.
        #[test]
        fn scoring_only_the_tiers_that_rank_changes_nothing(
            doc in words(),
            ws in words(),
            prefix in prop_oneof![Just("g"), Just("ge"), Just("Ge"), Just("gt"), Just("s"), Just("va"), Just("é"), Just("gé")],
            limit in 0usize..12,
        ) {
            let doc = DocWords::scan(&ropey::Rope::from_str(&doc));
            let index = Index::from_texts(Path::new("/w"), [(PathBuf::from("/w/a.rs"), ws.as_str())]);
            let fast = complete_with(&doc, &index, prefix, prefix, limit, false);
            let all = complete_with(&doc, &index, prefix, prefix, limit, true);
            prop_assert_eq!(fast, all);
        }
    }

    #[test]
    fn push_decimal_writes_what_format_does() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            let mut s = String::from("x");
            super::push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }
}
