//! [`AnswerChecker`]: the protocol's exactly-one-answer rule (PROTOCOL.md 7.1, 15.5) as a
//! test oracle. Feed it every request id the peer sends and every message the peer receives;
//! it panics at the first message that breaks the rule (an answer for an id not owed one, a
//! second answer, a partial for a call that did not ask for a stream, after its response, or
//! out of order) and, at the end, on any request left unanswered.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use hearth_protocol::{ErrorCode, Message, RequestId, Response};

/// What a request sent by the peer is still owed.
#[derive(Debug, Default)]
struct Owed {
    /// Responses still to come (1, or 2 for a request that reused an id in flight).
    responses: u32,
    /// Whether it asked for a stream (so partials may come).
    stream: bool,
    /// The last partial's seq.
    last_seq: Option<u64>,
}

/// Tracks one connection's requests and answers, in both directions.
#[derive(Debug, Default)]
pub struct AnswerChecker {
    owed: BTreeMap<RequestId, Owed>,
    answers: BTreeMap<RequestId, Vec<Response>>,
    partials: BTreeMap<RequestId, Vec<(u64, Bytes)>>,
    /// Requests the daemon made of the peer, not yet answered by the peer.
    daemon_open: BTreeSet<RequestId>,
    /// Requests the daemon made of the peer and cancelled (answers to them are optional).
    daemon_cancelled: BTreeSet<RequestId>,
    daemon_requests: u64,
}

impl AnswerChecker {
    /// A checker with nothing sent yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The peer sent request `id`; `stream` if it asked for partial results.
    pub fn sent(&mut self, id: u64, stream: bool) {
        let id = RequestId::new(id);
        assert!(
            !self.owed.contains_key(&id),
            "the test reused id {id} while it was in flight; use sent_duplicate"
        );
        self.answers.remove(&id);
        self.partials.remove(&id);
        self.owed.insert(
            id,
            Owed {
                responses: 1,
                stream,
                last_seq: None,
            },
        );
    }

    /// The peer sent a second request with `id` while the first was in flight: PROTOCOL.md 7.1
    /// allows (requires) two responses for that id.
    pub fn sent_duplicate(&mut self, id: u64) {
        let owed = self
            .owed
            .get_mut(&RequestId::new(id))
            .unwrap_or_else(|| panic!("id {id} is not in flight"));
        owed.responses += 1;
    }

    /// A message the peer received. Panics if it breaks the answer rules.
    pub fn received(&mut self, msg: &Message) {
        match msg {
            Message::Response(r) => {
                let owed = self.owed.get_mut(&r.id).unwrap_or_else(|| {
                    panic!("a response for id {} that is owed none: {r:?}", r.id)
                });
                owed.responses -= 1;
                if owed.responses == 0 {
                    self.owed.remove(&r.id);
                }
                self.answers.entry(r.id).or_default().push(r.clone());
            }
            Message::Partial(p) => {
                let owed = self.owed.get_mut(&p.id).unwrap_or_else(|| {
                    panic!(
                        "a partial for id {} which is not in flight (after its response?): {p:?}",
                        p.id
                    )
                });
                assert!(
                    owed.stream,
                    "a partial for id {}, which did not ask for a stream",
                    p.id
                );
                if let Some(last) = owed.last_seq {
                    assert!(
                        p.seq > last,
                        "partial seq {} after {last} for id {}",
                        p.seq,
                        p.id
                    );
                }
                owed.last_seq = Some(p.seq);
                self.partials
                    .entry(p.id)
                    .or_default()
                    .push((p.seq, p.chunk.clone()));
            }
            Message::Request(r) => {
                self.daemon_requests += 1;
                assert!(
                    self.daemon_open.insert(r.id),
                    "the daemon reused its id {} while it was in flight",
                    r.id
                );
                self.daemon_cancelled.remove(&r.id);
                assert!(
                    r.options.is_default(),
                    "a daemon request carries no options: {r:?}"
                );
            }
            Message::Cancel(c) => {
                // A cancel from the daemon refers to a request the daemon made.
                assert!(
                    self.daemon_open.contains(&c.id) || self.daemon_cancelled.contains(&c.id),
                    "the daemon cancelled id {}, which it never asked",
                    c.id
                );
                if self.daemon_open.remove(&c.id) {
                    self.daemon_cancelled.insert(c.id);
                }
            }
            Message::Notification(_) => {}
        }
    }

    /// The peer answered the daemon's request `id`. Answering one the daemon cancelled is
    /// allowed (PROTOCOL.md 15.3); answering one never asked is the test's own choice and is
    /// not recorded.
    pub fn answered_daemon(&mut self, id: u64) {
        self.daemon_open.remove(&RequestId::new(id));
    }

    /// Requests the peer sent that are still owed a response.
    pub fn outstanding(&self) -> Vec<u64> {
        self.owed.keys().map(|id| id.get()).collect()
    }

    /// The daemon's requests the peer has not answered (and the daemon has not cancelled).
    pub fn daemon_outstanding(&self) -> Vec<u64> {
        self.daemon_open.iter().map(|id| id.get()).collect()
    }

    /// How many requests the daemon has made of the peer.
    pub fn daemon_requests(&self) -> u64 {
        self.daemon_requests
    }

    /// Whether every request sent has been answered as often as it should be.
    pub fn all_answered(&self) -> bool {
        self.owed.is_empty()
    }

    /// Panics unless every request sent was answered.
    pub fn assert_all_answered(&self) {
        assert!(
            self.owed.is_empty(),
            "requests never answered: {:?}",
            self.outstanding()
        );
    }

    /// The response(s) to `id` received so far.
    pub fn answers(&self, id: u64) -> &[Response] {
        self.answers
            .get(&RequestId::new(id))
            .map_or(&[], Vec::as_slice)
    }

    /// The one response to `id`; panics if there is not exactly one.
    pub fn answer(&self, id: u64) -> &Response {
        match self.answers(id) {
            [one] => one,
            other => panic!("expected one answer for id {id}, got {other:?}"),
        }
    }

    /// The error code `id` was answered with (panics on a result or no answer).
    pub fn code(&self, id: u64) -> ErrorCode {
        crate::error_code(self.answer(id))
    }

    /// The partials received for `id`, as (seq, chunk), in arrival order.
    pub fn partials(&self, id: u64) -> &[(u64, Bytes)] {
        self.partials
            .get(&RequestId::new(id))
            .map_or(&[], Vec::as_slice)
    }

    /// How many responses of each error code (`None` for results) have been received.
    pub fn codes(&self) -> BTreeMap<Option<i64>, usize> {
        let mut out = BTreeMap::new();
        for r in self.answers.values().flatten() {
            let code = r.outcome.as_ref().err().map(|e| e.code.0);
            *out.entry(code).or_default() += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    //! The oracle itself must be able to fail: each rule it enforces, broken once.

    use bytes::Bytes;
    use hearth_protocol::{
        Cancel, ErrorObject, Message, Partial, Request, RequestOptions, Response,
    };

    use super::AnswerChecker;

    fn ok(id: u64) -> Message {
        Message::Response(Response {
            id: id.into(),
            outcome: Ok(Bytes::from_static(&[0xc0])),
        })
    }

    fn err(id: u64, code: i64) -> Message {
        Message::Response(Response {
            id: id.into(),
            outcome: Err(ErrorObject::new(hearth_protocol::ErrorCode(code), "x")),
        })
    }

    fn partial(id: u64, seq: u64) -> Message {
        Message::Partial(Partial {
            id: id.into(),
            seq,
            chunk: Bytes::from_static(&[0x01]),
        })
    }

    fn daemon_request(id: u64) -> Message {
        Message::Request(Request {
            id: id.into(),
            method: hearth_protocol::Text::from_static("m"),
            params: Bytes::from_static(&[0xc0]),
            options: RequestOptions::default(),
        })
    }

    #[test]
    fn a_clean_exchange_passes_and_is_recorded() {
        let mut c = AnswerChecker::new();
        c.sent(1, true);
        c.sent(2, false);
        assert_eq!(c.outstanding(), [1, 2]);
        c.received(&partial(1, 0));
        c.received(&partial(1, 2)); // a gap: a dropped chunk is allowed
        c.received(&err(2, -32801));
        c.received(&ok(1));
        c.assert_all_answered();
        assert_eq!(c.partials(1).len(), 2);
        assert_eq!(c.code(2).0, -32801);
        assert_eq!(c.codes().get(&None), Some(&1));
    }

    #[test]
    #[should_panic(expected = "owed none")]
    fn a_second_response_fails() {
        let mut c = AnswerChecker::new();
        c.sent(1, false);
        c.received(&ok(1));
        c.received(&ok(1));
    }

    #[test]
    #[should_panic(expected = "owed none")]
    fn a_response_for_an_id_never_sent_fails() {
        AnswerChecker::new().received(&ok(9));
    }

    #[test]
    fn a_reused_id_in_flight_may_get_two_responses() {
        let mut c = AnswerChecker::new();
        c.sent(5, false);
        c.sent_duplicate(5);
        c.received(&err(5, -32600));
        assert!(!c.all_answered());
        c.received(&ok(5));
        c.assert_all_answered();
        assert_eq!(c.answers(5).len(), 2);
    }

    #[test]
    #[should_panic(expected = "did not ask for a stream")]
    fn a_partial_without_stream_fails() {
        let mut c = AnswerChecker::new();
        c.sent(1, false);
        c.received(&partial(1, 0));
    }

    #[test]
    #[should_panic(expected = "not in flight")]
    fn a_partial_after_the_response_fails() {
        let mut c = AnswerChecker::new();
        c.sent(1, true);
        c.received(&ok(1));
        c.received(&partial(1, 0));
    }

    #[test]
    #[should_panic(expected = "partial seq 1 after 1")]
    fn a_repeated_seq_fails() {
        let mut c = AnswerChecker::new();
        c.sent(1, true);
        c.received(&partial(1, 1));
        c.received(&partial(1, 1));
    }

    #[test]
    #[should_panic(expected = "never answered: [2]")]
    fn an_unanswered_request_fails_at_the_end() {
        let mut c = AnswerChecker::new();
        c.sent(1, false);
        c.sent(2, false);
        c.received(&ok(1));
        c.assert_all_answered();
    }

    #[test]
    fn daemon_requests_are_tracked_until_answered_or_cancelled() {
        let mut c = AnswerChecker::new();
        c.received(&daemon_request(1));
        c.received(&daemon_request(2));
        assert_eq!(c.daemon_outstanding(), [1, 2]);
        c.answered_daemon(1);
        c.received(&Message::Cancel(Cancel { id: 2.into() }));
        assert!(c.daemon_outstanding().is_empty());
        assert_eq!(c.daemon_requests(), 2);
    }

    #[test]
    #[should_panic(expected = "never asked")]
    fn a_daemon_cancel_for_a_request_it_never_made_fails() {
        AnswerChecker::new().received(&Message::Cancel(Cancel { id: 3.into() }));
    }

    #[test]
    #[should_panic(expected = "reused its id")]
    fn a_daemon_reusing_an_id_in_flight_fails() {
        let mut c = AnswerChecker::new();
        c.received(&daemon_request(1));
        c.received(&daemon_request(1));
    }
}
