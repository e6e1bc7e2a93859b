//! Daemon-wide counters behind `$/stats`. Every counter is a relaxed atomic, so the request
//! path takes no lock; only error codes outside hearth's own list (chosen by applications) go
//! through a mutex, and only on the error path.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use hearth_protocol::ErrorCode;
use hearth_protocol::reserved::Stats;

/// The error codes hearth itself produces, each with its own counter slot.
const KNOWN_CODES: [ErrorCode; 14] = [
    ErrorCode::PARSE_ERROR,
    ErrorCode::INVALID_REQUEST,
    ErrorCode::METHOD_NOT_FOUND,
    ErrorCode::INVALID_PARAMS,
    ErrorCode::INTERNAL_ERROR,
    ErrorCode::REQUEST_CANCELLED,
    ErrorCode::SERVER_BUSY,
    ErrorCode::DEADLINE_EXCEEDED,
    ErrorCode::SHUTTING_DOWN,
    ErrorCode::UNSUPPORTED_VERSION,
    ErrorCode::FRAME_TOO_LARGE,
    ErrorCode::EMPTY_FRAME,
    ErrorCode::TOO_MANY_ERRORS,
    ErrorCode::FRAME_TIMEOUT,
];

/// The name unregistered methods are counted under.
pub(crate) const UNKNOWN_METHOD: &str = "(unknown)";

#[derive(Debug)]
pub(crate) struct Counters {
    started: Instant,
    pub(crate) connections: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    requests_total: AtomicU64,
    /// Per method index; the last slot counts unknown methods.
    by_method: Box<[AtomicU64]>,
    method_names: Vec<String>,
    known_errors: [AtomicU64; KNOWN_CODES.len()],
    /// Application-defined codes: error path only, never on a successful request.
    other_errors: Mutex<BTreeMap<i64, u64>>,
}

impl Counters {
    pub(crate) fn new(method_names: Vec<String>) -> Self {
        Self {
            started: Instant::now(),
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            by_method: (0..=method_names.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            method_names,
            known_errors: Default::default(),
            other_errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts a request for the method with this index (`None`: not registered).
    pub(crate) fn request(&self, method: Option<usize>) {
        self.requests_total.fetch_add(1, Relaxed);
        let slot = method.unwrap_or(self.method_names.len());
        if let Some(counter) = self.by_method.get(slot) {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Counts an error sent to a peer.
    pub(crate) fn error(&self, code: ErrorCode) {
        match KNOWN_CODES.iter().position(|&c| c == code) {
            Some(i) => {
                self.known_errors[i].fetch_add(1, Relaxed);
            }
            None => {
                // A poisoned lock only means another thread panicked mid-increment; the map
                // is still usable.
                let mut other = self.other_errors.lock().unwrap_or_else(|p| p.into_inner());
                *other.entry(code.0).or_default() += 1;
            }
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut methods = BTreeMap::new();
        for (i, counter) in self.by_method.iter().enumerate() {
            let n = counter.load(Relaxed);
            let name = self
                .method_names
                .get(i)
                .map_or(UNKNOWN_METHOD, String::as_str);
            if n > 0 || i < self.method_names.len() {
                methods.insert(name.to_owned(), n);
            }
        }
        let mut errors = BTreeMap::new();
        for (code, counter) in KNOWN_CODES.iter().zip(&self.known_errors) {
            let n = counter.load(Relaxed);
            if n > 0 {
                errors.insert(code.0.to_string(), n);
            }
        }
        let other = self.other_errors.lock().unwrap_or_else(|p| p.into_inner());
        for (code, n) in other.iter() {
            errors.insert(code.to_string(), *n);
        }
        Stats {
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            connections: self.connections.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            requests_total: self.requests_total.load(Relaxed),
            methods,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_methods_and_errors() {
        let c = Counters::new(vec!["echo".into(), "sleep".into()]);
        c.request(Some(0));
        c.request(Some(0));
        c.request(None);
        c.error(ErrorCode::METHOD_NOT_FOUND);
        c.error(ErrorCode(42));
        c.error(ErrorCode(42));
        let s = c.snapshot();
        assert_eq!(s.requests_total, 3);
        assert_eq!(s.methods["echo"], 2);
        assert_eq!(s.methods["sleep"], 0);
        assert_eq!(s.methods[UNKNOWN_METHOD], 1);
        assert_eq!(s.errors["-32601"], 1);
        assert_eq!(s.errors["42"], 2);
    }
}
