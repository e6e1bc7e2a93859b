//! The envelopes — request `[v, 0, id, method, params]` (in version 2 optionally followed by
//! an options map), response `[v, 1, id, error, result]`, notification `[v, 2, method,
//! params]`, cancel `[v, 3, id]` and, in version 2 only, partial result `[2, 4, id, seq,
//! chunk]` — and [`Message::decode_any`], which turns one frame body into one of them together
//! with the protocol [`Version`] it was written in.
//!
//! Decoding is zero-copy: params, results and error data are slices of the frame (`Bytes`), so
//! they stay MessagePack until whoever owns them deserializes them into a type of their own.
//! Method names are validated UTF-8, also kept as slices.

use bytes::{Buf, Bytes};

use crate::error::{DecodeError, ErrorCode, ErrorObject};
use crate::value::{self, DEFAULT_MAX_DEPTH, Head, Reader, ValueError};

/// A request id: an unsigned 64-bit integer chosen by the sender, unique among its in-flight
/// requests on one connection (each direction has its own id space).
///
/// A newtype so that an id cannot be mixed up with a sequence number or a count; it compares
/// equal to the plain integer it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RequestId(u64);

impl RequestId {
    /// The id `n`.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// The integer on the wire.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        Self(n)
    }
}

impl From<RequestId> for u64 {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

impl PartialEq<u64> for RequestId {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl PartialEq<RequestId> for u64 {
    fn eq(&self, other: &RequestId) -> bool {
        *self == other.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// A protocol version this crate speaks: the first element of every envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// Version 1: requests, responses, notifications, cancels.
    V1 = 1,
    /// Version 2: version 1 plus request options (deadline, supersede, stream), partial
    /// results, and requests from the daemon to the client.
    V2 = 2,
}

impl Version {
    /// The newest version.
    pub const LATEST: Self = Self::V2;

    /// The number on the wire.
    pub const fn number(self) -> u32 {
        self as u32
    }

    /// The version with that number, if this crate speaks it.
    pub fn from_number(n: u64) -> Option<Self> {
        match n {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// The message kinds, as the second element of every envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Request = 0,
    Response = 1,
    Notification = 2,
    Cancel = 3,
    Partial = 4,
}

/// UTF-8 text kept as a slice of the frame it arrived in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    /// Wraps bytes after checking they are UTF-8.
    pub fn new(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// Text from a static string, without copying.
    pub fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor guarantees UTF-8: `new` checks it, `from_static` and
        // `From<String>` take a `str`; the bytes are immutable afterwards. Checking again
        // here cost a UTF-8 scan on every method lookup.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

/// The options of a version 2 request: the map in `[2, 0, id, method, params, opts]`.
/// Every key is optional; a request without the map has the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// `"deadline_ms"`: the caller needs the answer within this many milliseconds of the
    /// receiver reading the request.
    pub deadline_ms: Option<u64>,
    /// `"supersede"`: a latest-wins key scoped to the connection. A newer request with the
    /// same key cancels this one (answered -32801).
    pub supersede: Option<Text>,
    /// `"stream"`: the caller accepts partial results for this request.
    pub stream: bool,
}

impl RequestOptions {
    /// Whether every option has its default, so the map need not be sent.
    pub fn is_default(&self) -> bool {
        self.deadline_ms.is_none() && self.supersede.is_none() && !self.stream
    }
}

/// `[v, 0, id, method, params]` (or, in version 2, `[2, 0, id, method, params, opts]`): a call
/// that expects exactly one response with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The caller's id for this call.
    pub id: RequestId,
    /// The method name.
    pub method: Text,
    /// The params, as raw MessagePack (any value, often a map).
    pub params: Bytes,
    /// The options (version 2); all defaults in version 1.
    pub options: RequestOptions,
}

impl Request {
    /// The method name as a string.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }
}

/// `[1, 1, id, error, result]`: the one answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request this answers.
    pub id: RequestId,
    /// The result as raw MessagePack, or the error.
    pub outcome: Result<Bytes, ErrorObject>,
}

/// `[1, 2, method, params]`: a one-way message; never answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: Text,
    /// The params, as raw MessagePack.
    pub params: Bytes,
}

impl Notification {
    /// The method name as a string.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }
}

/// `[v, 3, id]`: asks the receiver to stop working on request `id`, which the sender of the
/// cancel made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancel {
    /// The id of the request to cancel.
    pub id: RequestId,
}

/// `[2, 4, id, seq, chunk]` (version 2, daemon to client only): one partial result of request
/// `id`, sent with `"stream": true`. `seq` counts the chunks the handler produced, from 0; a
/// gap tells how many were dropped. All partials of a request come before its response.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// The id of the request this belongs to.
    pub id: RequestId,
    /// The chunk's number among the chunks the handler produced for that request.
    pub seq: u64,
    /// The chunk, as raw MessagePack.
    pub chunk: Bytes,
}

/// Any hearth message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call.
    Request(Request),
    /// The answer to a call.
    Response(Response),
    /// A one-way message.
    Notification(Notification),
    /// A request to stop a call.
    Cancel(Cancel),
    /// A partial result of a streamed call (version 2).
    Partial(Partial),
}

/// A decoded message with the version its envelope carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The envelope's version.
    pub version: Version,
    /// The message.
    pub message: Message,
}

fn parse(e: ValueError) -> DecodeError {
    DecodeError::Parse {
        reason: e.to_string(),
        id: None,
    }
}

/// The id of a request whose body is damaged after its id (`[1, 0, id, ...`), so the parse
/// error can be answered to it. MessagePack framing is the same in every version, so a body
/// that is not well formed is garbage whatever version it claims: no version check here.
fn damaged(body: &[u8], e: ValueError) -> DecodeError {
    let mut rd = Reader::new(body);
    let id = match (rd.head(), rd.head(), rd.head(), rd.head()) {
        (Ok(Head::Array(n)), Ok(Head::Uint(v)), Ok(Head::Uint(0)), Ok(Head::Uint(id)))
            if n >= 3 && Version::from_number(v).is_some() =>
        {
            Some(RequestId(id))
        }
        _ => None,
    };
    DecodeError::Parse {
        reason: e.to_string(),
        id,
    }
}

fn invalid(reason: impl Into<String>, id: Option<RequestId>) -> DecodeError {
    DecodeError::Invalid {
        reason: reason.into(),
        id,
    }
}

/// Reads envelope fields from a body already known to be well formed.
struct Fields<'a> {
    body: &'a Bytes,
    rd: Reader<'a>,
    id: Option<RequestId>,
    /// The nesting limit for the whole message, the envelope being level 1.
    depth: usize,
}

impl<'a> Fields<'a> {
    fn head(&mut self) -> Result<Head, DecodeError> {
        self.rd.head().map_err(parse)
    }

    fn id(&mut self, what: &str) -> Result<RequestId, DecodeError> {
        match self.head()? {
            Head::Uint(id) => Ok(RequestId(id)),
            other => Err(invalid(
                format!(
                    "{what} must be an unsigned integer, found {}",
                    other.describe()
                ),
                self.id,
            )),
        }
    }

    fn text(&mut self, what: &str) -> Result<Text, DecodeError> {
        match self.head()? {
            Head::Str(n) => {
                let start = self.rd.position();
                self.rd.bytes(n).map_err(parse)?;
                Text::new(self.body.slice(start..start + n as usize))
                    .map_err(|_| invalid(format!("{what} is not valid UTF-8"), self.id))
            }
            other => Err(invalid(
                format!("{what} must be a string, found {}", other.describe()),
                self.id,
            )),
        }
    }

    /// The bytes of an option name (a string, not yet checked to be UTF-8): a slice of the
    /// body, no copy and no reference count.
    fn name(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.head()? {
            Head::Str(n) => self.rd.bytes(n).map_err(parse),
            other => Err(invalid(
                format!(
                    "an option name must be a string, found {}",
                    other.describe()
                ),
                self.id,
            )),
        }
    }

    /// A whole value nested `level` containers deep (1: an element of the envelope).
    fn raw_at(&mut self, level: usize) -> Result<Bytes, DecodeError> {
        let range = self
            .rd
            .skip(self.depth.saturating_sub(level))
            .map_err(parse)?;
        Ok(self.body.slice(range))
    }

    /// A whole element of the envelope: params, a result.
    fn raw(&mut self) -> Result<Bytes, DecodeError> {
        self.raw_at(1)
    }

    fn error_object(&mut self) -> Result<ErrorObject, DecodeError> {
        let pairs = match self.head()? {
            Head::Map(n) => n,
            other => {
                return Err(invalid(
                    format!("error must be nil or a map, found {}", other.describe()),
                    self.id,
                ));
            }
        };
        let (mut code, mut message, mut data) = (None, None, None);
        for _ in 0..pairs {
            // Keys that are not strings cannot be ours: skip them with their values.
            if !matches!(self.rd.clone().head(), Ok(Head::Str(_))) {
                self.raw_at(2)?;
                self.raw_at(2)?;
                continue;
            }
            let key = self.text("an error map key")?;
            match key.as_str() {
                "code" => match self.head()? {
                    Head::Uint(v) => code = i64::try_from(v).ok(),
                    Head::Int(v) => code = Some(v),
                    other => {
                        return Err(invalid(
                            format!("error code must be an integer, found {}", other.describe()),
                            self.id,
                        ));
                    }
                },
                "message" => message = Some(self.text("error message")?.as_str().to_owned()),
                "data" => data = Some(self.raw_at(2)?),
                _ => {
                    self.raw_at(2)?; // unknown keys are ignored, for later additions
                }
            }
        }
        match (code, message) {
            (Some(code), Some(message)) => Ok(ErrorObject {
                code: ErrorCode(code),
                message,
                data,
            }),
            _ => Err(invalid(
                "error map needs an integer code and a string message",
                self.id,
            )),
        }
    }

    fn expect_len(&self, kind: &str, found: u32, want: u32) -> Result<(), DecodeError> {
        if found == want {
            Ok(())
        } else {
            Err(invalid(
                format!("a {kind} has {want} elements, found {found}"),
                self.id,
            ))
        }
    }
}

impl Message {
    /// Decodes one version 1 frame body, allowing the default nesting depth. A body of any
    /// other version is [`DecodeError::UnsupportedVersion`]; use [`Message::decode_any`] to
    /// accept every version this crate speaks.
    #[inline]
    pub fn decode(body: Bytes) -> Result<Self, DecodeError> {
        Self::decode_with_depth(body, DEFAULT_MAX_DEPTH)
    }

    /// [`Message::decode`] with a nesting limit (see [`Message::decode_any`]).
    #[inline]
    pub fn decode_with_depth(body: Bytes, max_depth: usize) -> Result<Self, DecodeError> {
        let decoded = Self::decode_any(body, max_depth)?;
        match decoded.version {
            Version::V1 => Ok(decoded.message),
            other => Err(DecodeError::UnsupportedVersion {
                found: u64::from(other.number()),
            }),
        }
    }

    /// Decodes one frame body of any version this crate speaks; values may nest at most
    /// `max_depth` levels, counting the envelope (capped at [`DEFAULT_MAX_DEPTH`]).
    ///
    /// Order of checks: the body must be one well-formed MessagePack value (else
    /// [`DecodeError::Parse`]); its version must be one we speak (else
    /// [`DecodeError::UnsupportedVersion`]); it must be a valid envelope of that version (else
    /// [`DecodeError::Invalid`]); and nothing may follow it (else
    /// [`DecodeError::TrailingBytes`]). Errors carry the request id whenever it could be read.
    ///
    /// Which kinds may travel in which direction (a partial only from the daemon, say) is not
    /// checked here: that is the receiver's business.
    #[inline]
    pub fn decode_any(body: Bytes, max_depth: usize) -> Result<Decoded, DecodeError> {
        let limit = max_depth.min(DEFAULT_MAX_DEPTH);
        if limit == 0 {
            // Not even the envelope array fits.
            let e = value::skip(&body, 0)
                .err()
                .unwrap_or(ValueError::TooDeep(0));
            return Err(damaged(&body, e));
        }
        // The messages read most — a request as hearth's clients write it and a successful
        // response — are recognised by their first bytes; anything else (and anything wrong)
        // takes the general path, which gives the same answer for these bodies.
        common_shapes(body, limit, Self::decode_general)
    }

    /// [`Message::decode_any`] without the fast path for common shapes; `limit` is
    /// already capped and at least 1.
    #[inline(never)]
    fn decode_general(body: Bytes, limit: usize) -> Result<Decoded, DecodeError> {
        // One pass: the envelope is read field by field and every value in it is walked once,
        // which also proves the first value well formed. Only when the envelope is rejected is
        // the whole body walked again, so that a body that is not well-formed MessagePack is
        // reported as such even if its envelope also looks wrong.
        let mut f = Fields {
            body: &body,
            rd: Reader::new(&body),
            id: None,
            depth: limit,
        };
        match Self::envelope(&mut f) {
            Ok(decoded) => {
                let end = f.rd.position();
                if end < body.len() {
                    return Err(DecodeError::TrailingBytes {
                        extra: body.len() - end,
                        id: f.id,
                    });
                }
                Ok(decoded)
            }
            Err(e) => match value::skip(&body, limit) {
                Err(not_well_formed) => Err(damaged(&body, not_well_formed)),
                Ok(_) => Err(e),
            },
        }
    }

    fn envelope(f: &mut Fields<'_>) -> Result<Decoded, DecodeError> {
        let len = match f.head()? {
            Head::Array(n) if n >= 1 => n,
            Head::Array(_) => return Err(invalid("a message cannot be an empty array", None)),
            other => {
                return Err(invalid(
                    format!("a message must be an array, found {}", other.describe()),
                    None,
                ));
            }
        };
        let version = match f.head()? {
            Head::Uint(v) => {
                Version::from_number(v).ok_or(DecodeError::UnsupportedVersion { found: v })?
            }
            other => {
                return Err(invalid(
                    format!(
                        "the version must be an unsigned integer, found {}",
                        other.describe()
                    ),
                    None,
                ));
            }
        };
        if len < 2 {
            return Err(invalid("a message has at least 2 elements, found 1", None));
        }
        let kind = match f.head()? {
            Head::Uint(k) if k == Kind::Request as u64 => Kind::Request,
            Head::Uint(k) if k == Kind::Response as u64 => Kind::Response,
            Head::Uint(k) if k == Kind::Notification as u64 => Kind::Notification,
            Head::Uint(k) if k == Kind::Cancel as u64 => Kind::Cancel,
            Head::Uint(k) if k == Kind::Partial as u64 && version >= Version::V2 => Kind::Partial,
            Head::Uint(k) => {
                return Err(invalid(
                    format!("unknown message kind {k} in version {version}"),
                    None,
                ));
            }
            other => {
                return Err(invalid(
                    format!(
                        "the kind must be an unsigned integer, found {}",
                        other.describe()
                    ),
                    None,
                ));
            }
        };
        let message = match kind {
            Kind::Request => {
                if len >= 3 {
                    f.id = Some(f.id("request id")?);
                }
                if version >= Version::V2 {
                    if len != 5 && len != 6 {
                        return Err(invalid(
                            format!("a version 2 request has 5 or 6 elements, found {len}"),
                            f.id,
                        ));
                    }
                } else {
                    f.expect_len("request", len, 5)?;
                }
                let method = f.text("method")?;
                let params = f.raw()?;
                let options = if len == 6 {
                    f.options()?
                } else {
                    RequestOptions::default()
                };
                Self::Request(Request {
                    id: f.id.unwrap_or_default(),
                    method,
                    params,
                    options,
                })
            }
            Kind::Response => {
                f.expect_len("response", len, 5)?;
                let id = f.id("response id")?;
                let error = if f.rd.clone().head() == Ok(Head::Nil) {
                    f.head()?;
                    None
                } else {
                    Some(f.error_object()?)
                };
                let result = f.raw()?;
                Self::Response(Response {
                    id,
                    outcome: match error {
                        Some(e) => Err(e),
                        None => Ok(result),
                    },
                })
            }
            Kind::Notification => {
                f.expect_len("notification", len, 4)?;
                let method = f.text("method")?;
                let params = f.raw()?;
                Self::Notification(Notification { method, params })
            }
            Kind::Cancel => {
                f.expect_len("cancel", len, 3)?;
                let id = f.id("cancel id")?;
                Self::Cancel(Cancel { id })
            }
            Kind::Partial => {
                f.expect_len("partial result", len, 5)?;
                let id = f.id("partial result id")?;
                let seq = match f.head()? {
                    Head::Uint(seq) => seq,
                    other => {
                        return Err(invalid(
                            format!(
                                "a partial result's seq must be an unsigned integer, found {}",
                                other.describe()
                            ),
                            None,
                        ));
                    }
                };
                let chunk = f.raw()?;
                Self::Partial(Partial { id, seq, chunk })
            }
        };
        Ok(Decoded { version, message })
    }
}

/// The envelopes hearth sends on every call, read straight from the bytes: a request
/// `[1 or 2, 0, id, method, params]` (in version 2 optionally with its options map) and a
/// successful response `[1 or 2, 1, id, nil, result]`, the envelope a fixarray, the version
/// and kind positive fixints, the id a positive fixint or a uint 8/16/32/64 and a method a
/// fixstr. `Ok` only when the body is exactly such a message, well formed, within `limit`
/// and with nothing after it, which is when [`Message::decode_general`] returns the same
/// message; anything else (including every error) goes to `general` (which is
/// [`Message::decode_general`] but in tests), to decide.
///
/// The fallback is called from here rather than by the caller so that every path writes its
/// answer straight into the caller's: handing a `Decoded` back through another `Result` cost
/// two copies of it per message.
#[inline]
fn common_shapes<G>(body: Bytes, limit: usize, general: G) -> Result<Decoded, DecodeError>
where
    G: FnOnce(Bytes, usize) -> Result<Decoded, DecodeError>,
{
    let Some(&[array, version, kind]) = body.first_chunk::<3>() else {
        return general(body, limit);
    };
    let version = match version {
        1 => Version::V1,
        2 => Version::V2,
        _ => return general(body, limit),
    };
    match (array, kind) {
        (0x95, 0x01) => plain_response(body, version, limit, general),
        (0x95, 0x00) => plain_request(body, version, false, limit, general),
        (0x96, 0x00) if version == Version::V2 => {
            plain_request(body, version, true, limit, general)
        }
        _ => general(body, limit),
    }
}

/// An unsigned integer at `at` written as a positive fixint or a uint 8/16/32/64, and where
/// it ends; `None` for any other form (the general path reads those).
#[inline(always)]
fn short_uint(body: &[u8], at: usize) -> Option<(u64, usize)> {
    let &marker = body.get(at)?;
    match marker {
        0x00..=0x7f => Some((u64::from(marker), at + 1)),
        // Each width read as one big-endian word rather than byte by byte.
        0xcc => Some((u64::from(*body.get(at + 1)?), at + 2)),
        0xcd => {
            let bytes = body.get(at + 1..)?.first_chunk::<2>()?;
            Some((u64::from(u16::from_be_bytes(*bytes)), at + 3))
        }
        0xce => {
            let bytes = body.get(at + 1..)?.first_chunk::<4>()?;
            Some((u64::from(u32::from_be_bytes(*bytes)), at + 5))
        }
        0xcf => {
            let bytes = body.get(at + 1..)?.first_chunk::<8>()?;
            Some((u64::from_be_bytes(*bytes), at + 9))
        }
        _ => None,
    }
}

/// `body` without its first `start` bytes, taking over the caller's reference instead of
/// making a new one (a slice costs a reference count increment, and dropping the body a
/// decrement).
#[inline(always)]
fn tail(mut body: Bytes, start: usize) -> Bytes {
    body.advance(start);
    body
}

/// A successful response `[v, 1, id, nil, result]` (see [`common_shapes`]).
#[inline]
fn plain_response<G>(
    body: Bytes,
    version: Version,
    limit: usize,
    general: G,
) -> Result<Decoded, DecodeError>
where
    G: FnOnce(Bytes, usize) -> Result<Decoded, DecodeError>,
{
    let Some((id, at)) = short_uint(&body, 3) else {
        return general(body, limit);
    };
    if body.get(at) != Some(&0xc0) {
        return general(body, limit);
    }
    let start = at + 1;
    let mut rd = Reader::at(&body, start);
    match rd.skip(limit - 1) {
        Ok(_) if rd.position() == body.len() => {}
        _ => return general(body, limit),
    }
    Ok(Decoded {
        version,
        message: Message::Response(Response {
            id: RequestId(id),
            outcome: Ok(tail(body, start)),
        }),
    })
}

/// Where the fields of a request in one of the common shapes lie (see [`common_shapes`]).
struct RequestParts {
    id: RequestId,
    method: std::ops::Range<usize>,
    params: std::ops::Range<usize>,
    options: PlainOptions,
}

/// [`RequestOptions`] as the fast path finds them: the supersede key still a range of the
/// body.
#[derive(Default)]
struct PlainOptions {
    deadline_ms: Option<u64>,
    supersede: Option<std::ops::Range<usize>>,
    stream: bool,
}

/// A request `[v, 0, id, method, params]` or `[2, 0, id, method, params, opts]` (see
/// [`common_shapes`]); the method is one reference to the body and the params of a request
/// without options take over the caller's.
#[inline]
fn plain_request<G>(
    body: Bytes,
    version: Version,
    with_options: bool,
    limit: usize,
    general: G,
) -> Result<Decoded, DecodeError>
where
    G: FnOnce(Bytes, usize) -> Result<Decoded, DecodeError>,
{
    let Some(parts) = request_parts(&body, with_options, limit) else {
        return general(body, limit);
    };
    let method = Text(body.slice(parts.method));
    let options = RequestOptions {
        deadline_ms: parts.options.deadline_ms,
        supersede: parts.options.supersede.map(|key| Text(body.slice(key))),
        stream: parts.options.stream,
    };
    let params = if parts.params.end == body.len() {
        tail(body, parts.params.start)
    } else {
        body.slice(parts.params)
    };
    Ok(Decoded {
        version,
        message: Message::Request(Request {
            id: parts.id,
            method,
            params,
            options,
        }),
    })
}

#[inline]
fn request_parts(body: &Bytes, with_options: bool, limit: usize) -> Option<RequestParts> {
    let (id, at) = short_uint(body, 3)?;
    let id = RequestId(id);
    let marker = *body.get(at)?;
    if !(0xa0..=0xbf).contains(&marker) {
        return None;
    }
    let start = at + 1;
    let end = start + usize::from(marker & 0x1f);
    let name = body.get(start..end)?;
    // The general path rejects a method that is not UTF-8; leave that to it. ASCII, the
    // usual case, is UTF-8 and cheaper to recognise.
    if !name.is_ascii() && std::str::from_utf8(name).is_err() {
        return None;
    }
    let mut rd = Reader::at(body, end);
    let params = rd.skip(limit - 1).ok()?;
    let mut read = rd.position();
    let options = if with_options {
        let (options, options_end) = plain_options(body, read)?;
        read = options_end;
        options
    } else {
        PlainOptions::default()
    };
    if read != body.len() {
        return None;
    }
    Some(RequestParts {
        id,
        method: start..end,
        params,
        options,
    })
}

/// The options map at `at` when it is a fixmap of the options this crate knows, each key a
/// fixstr, `deadline_ms` a positive fixint or uint 8-64, `supersede` a fixstr of UTF-8 and
/// `stream` a boolean, and where it ends. A key given twice counts with its last value, as in
/// [`Fields::options`]. `None` for anything else, unknown keys included: the general path
/// reads those (it also checks no depth for these scalar values, so neither does this).
#[inline]
fn plain_options(body: &[u8], at: usize) -> Option<(PlainOptions, usize)> {
    let marker = *body.get(at)?;
    if !(0x80..=0x8f).contains(&marker) {
        return None;
    }
    let mut opts = PlainOptions::default();
    let mut at = at + 1;
    for _ in 0..marker & 0x0f {
        let key = *body.get(at)?;
        if !(0xa0..=0xbf).contains(&key) {
            return None;
        }
        let name_end = at + 1 + usize::from(key & 0x1f);
        let name = body.get(at + 1..name_end)?;
        at = name_end;
        match name {
            b"deadline_ms" => {
                let (ms, end) = short_uint(body, at)?;
                opts.deadline_ms = Some(ms);
                at = end;
            }
            b"supersede" => {
                let value = *body.get(at)?;
                if !(0xa0..=0xbf).contains(&value) {
                    return None;
                }
                let end = at + 1 + usize::from(value & 0x1f);
                let text = body.get(at + 1..end)?;
                if !text.is_ascii() && std::str::from_utf8(text).is_err() {
                    return None;
                }
                opts.supersede = Some(at + 1..end);
                at = end;
            }
            b"stream" => {
                opts.stream = match *body.get(at)? {
                    0xc2 => false,
                    0xc3 => true,
                    _ => return None,
                };
                at += 1;
            }
            _ => return None,
        }
    }
    Some((opts, at))
}

impl Fields<'_> {
    /// The options map of a version 2 request. Unknown keys (and keys that are not strings)
    /// are skipped with their values; a known key with a value of the wrong type is an
    /// invalid request, answered to the request's id.
    fn options(&mut self) -> Result<RequestOptions, DecodeError> {
        let pairs = match self.head()? {
            Head::Map(n) => n,
            other => {
                return Err(invalid(
                    format!("request options must be a map, found {}", other.describe()),
                    self.id,
                ));
            }
        };
        let mut opts = RequestOptions::default();
        for _ in 0..pairs {
            if !matches!(self.rd.clone().head(), Ok(Head::Str(_))) {
                self.raw_at(2)?;
                self.raw_at(2)?;
                continue;
            }
            // The name is compared as bytes: a known name is UTF-8 by construction, so only
            // an unknown one is checked (and then skipped), and no `Text` is made for it.
            match self.name()? {
                b"deadline_ms" => match self.head()? {
                    Head::Uint(ms) => opts.deadline_ms = Some(ms),
                    other => {
                        return Err(invalid(
                            format!(
                                "option deadline_ms must be an unsigned integer, found {}",
                                other.describe()
                            ),
                            self.id,
                        ));
                    }
                },
                b"supersede" => opts.supersede = Some(self.text("option supersede")?),
                b"stream" => match self.head()? {
                    Head::Bool(b) => opts.stream = b,
                    other => {
                        return Err(invalid(
                            format!(
                                "option stream must be a boolean, found {}",
                                other.describe()
                            ),
                            self.id,
                        ));
                    }
                },
                other => {
                    if std::str::from_utf8(other).is_err() {
                        return Err(invalid("an option name is not valid UTF-8", self.id));
                    }
                    self.raw_at(2)?; // unknown options are ignored, for later additions
                }
            }
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the fast path decodes `body` itself, without the general path.
    fn took_fast_path(body: &Bytes, depth: usize) -> bool {
        let not_taken = DecodeError::TrailingBytes {
            extra: usize::MAX,
            id: None,
        };
        common_shapes(body.clone(), depth, |_, _| Err(not_taken.clone())) != Err(not_taken)
    }

    /// Asserts that `decode_any` answers `body` at `depth` exactly as the general decoder
    /// does; returns whether the fast path took it.
    fn decodes_as_the_general_path(body: &Bytes, depth: usize) -> bool {
        let general = Message::decode_general(body.clone(), depth);
        assert_eq!(
            Message::decode_any(body.clone(), depth),
            general,
            "{body:02x?} at depth {depth}"
        );
        took_fast_path(body, depth)
    }

    /// The fast path for successful responses answers exactly as the general path does, for
    /// the bodies it takes and for near misses it must leave to the general path.
    #[test]
    fn plain_responses_decode_as_the_general_path_decodes_them() {
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        let ids: [&[u8]; 7] = [
            &[0x00],
            &[0x7f],
            &[0xcc, 0xff],
            &[0xcd, 0x12, 0x34],
            &[0xce, 0, 1, 0, 0],
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0xd0, 0x05], // int 8: a valid id the fast path leaves alone
        ];
        let results: [&[u8]; 9] = [
            &[0xc0],
            &[0x2a],
            &[0xa3, b'a', b'b', b'c'],
            &[0xc4, 0x02, 1, 2],
            &[0x92, 0x01, 0x91, 0x02],
            &[0x81, 0xa1, b'k', 0x90],
            &[0xa3, b'a'],                   // truncated
            &[0xc1],                         // reserved
            &[0x91, 0x91, 0x91, 0x91, 0xc0], // deep
        ];
        for version in [1u8, 2, 3] {
            for id in ids {
                for result in results {
                    let mut body = vec![0x95, version, 0x01];
                    body.extend_from_slice(id);
                    body.push(0xc0);
                    body.extend_from_slice(result);
                    bodies.push(body.clone());
                    body.push(0xc0); // trailing
                    bodies.push(body);
                }
                // An error instead of nil, and a short array.
                let mut body = vec![0x95, version, 0x01];
                body.extend_from_slice(id);
                body.extend_from_slice(&[0x82, 0xa4, b'c', b'o', b'd', b'e', 0x01]);
                body.extend_from_slice(&[0xa7, b'm', b'e', b's', b's', b'a', b'g', b'e', 0xa0]);
                body.push(0xc0);
                bodies.push(body);
                bodies.push(vec![0x94, version, 0x01, id[0]]);
            }
        }
        bodies.push(vec![0x95, 0x02, 0x01]);
        bodies.push(vec![0x95, 0x02, 0x01, 0xcd, 0x01]);
        bodies.push(vec![0x95, 0x02, 0x01, 0x07]);
        let mut fast = 0;
        for body in bodies {
            for depth in [1, 3, 5, DEFAULT_MAX_DEPTH] {
                let body = Bytes::from(body.clone());
                fast += usize::from(decodes_as_the_general_path(&body, depth));
            }
        }
        assert!(fast > 100, "the fast path took only {fast} bodies");
    }

    /// The same for requests: every combination of envelope, version, id, method, params,
    /// options and trailing bytes the fast path reads or must leave alone, at several depths.
    #[test]
    fn plain_requests_decode_as_the_general_path_decodes_them() {
        let ids: [&[u8]; 8] = [
            &[0x00],
            &[0x7f],
            &[0xcc, 0x80],
            &[0xcd, 0x12, 0x34],
            &[0xce, 0x80, 0, 0, 1],
            &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0xd0, 0x05], // int 8: valid, left to the general path
            &[0xa1, b'x'], // not an integer
        ];
        let methods: Vec<Vec<u8>> = vec![
            b"\xa4echo".to_vec(),
            vec![0xa0],
            [&[0xa6][..], "h\u{e9}llo".as_bytes()].concat(), // UTF-8, not ASCII
            vec![0xa2, 0xc3, 0x28],                          // not UTF-8
            vec![0xa5, b'a'],                                // truncated
            vec![0xd9, 0x01, b'a'], // str 8: valid, left to the general path
            vec![0x01],             // not a string
        ];
        let params: [&[u8]; 7] = [
            &[0xc0],
            &[0xa3, b'a', b'b', b'c'],
            &[0x81, 0xa1, b'k', 0x90],
            &[0xa3, b'a'], // truncated
            &[0xc1],       // reserved
            &[0x91, 0x91, 0x91, 0xc0],
            &[0xdc, 0xff, 0xff], // overrun
        ];
        // MessagePack pieces: a fixstr, and a map of `n` pairs from its parts.
        let fs = |s: &str| [&[0xa0 | s.len() as u8][..], s.as_bytes()].concat();
        let map = |n: u8, parts: &[&[u8]]| [&[0x80 | n][..], &parts.concat()].concat();
        let (deadline, supersede, stream) = (fs("deadline_ms"), fs("supersede"), fs("stream"));
        let options: Vec<Vec<u8>> = vec![
            map(0, &[]),
            map(1, &[&deadline, &[0x05]]),
            map(1, &[&supersede, &fs("k")]),
            map(1, &[&stream, &[0xc3]]),
            map(1, &[&stream, &[0x01]]),              // wrong type
            map(1, &[&fs("x"), &[0x91, 0x91, 0x01]]), // unknown, nested
            map(1, &[&[0x01, 0x02]]),                 // key not a string
            map(1, &[&[0xa2, 0xc3, 0x28], &[0x01]]),  // name not UTF-8
            vec![0xc0],                               // not a map
            map(2, &[&fs("x")]),                      // truncated
            map(1, &[&supersede, &[0x01]]),           // wrong type
            // All three, a key twice (the last counts), large deadlines.
            map(
                4,
                &[
                    &deadline,
                    &[0xcd, 0x75, 0x30],
                    &supersede,
                    &fs("slot-1"),
                    &stream,
                    &[0xc2],
                    &deadline,
                    &[0xcf, 0, 0, 1, 0, 0, 0, 0, 7],
                ],
            ),
            // A UTF-8 key replaced by one that is not, and the other way round.
            map(
                2,
                &[&supersede, &fs("\u{e9}"), &supersede, &[0xa2, 0xc3, 0x28]],
            ),
            map(
                2,
                &[&supersede, &[0xa2, 0xc3, 0x28], &supersede, &fs("\u{e9}")],
            ),
            map(1, &[&supersede, &fs("")]),
            map(1, &[&supersede, &[0xd9, 0x01, b'k']]), // str 8: left to the general path
            map(1, &[&deadline, &[0xce, 0, 0]]),        // truncated
            map(1, &[&deadline, &[0xd0, 0x05]]),        // int 8: left to the general path
            map(1, &[&deadline, &[0xff]]),              // negative
            map(1, &[&[0xd9, 0x06], b"stream", &[0xc3]]), // str 8 key
            map(1, &[&stream]),                         // value missing
            map(1, &[&fs("stream")[..6]]),              // key truncated
            [map(0, &[]), vec![0xc0]].concat(),         // an extra element after the map
            vec![
                0xde, 0x00, 0x01, 0xa6, b's', b't', b'r', b'e', b'a', b'm', 0xc3,
            ], // map 16
        ];
        let mut fast = 0;
        let mut checked = 0;
        for array in [0x94u8, 0x95, 0x96, 0x97] {
            for version in [1u8, 2, 3] {
                for id in ids {
                    for method in &methods {
                        for param in params {
                            let mut body = vec![array, version, 0x00];
                            body.extend_from_slice(id);
                            body.extend_from_slice(method);
                            body.extend_from_slice(param);
                            let mut bodies = Vec::new();
                            if array == 0x96 {
                                for opts in &options {
                                    bodies.push([&body[..], opts].concat());
                                }
                            } else {
                                bodies.push(body);
                            }
                            for body in bodies {
                                for trailing in [false, true] {
                                    let mut body = body.clone();
                                    if trailing {
                                        body.push(0xc0);
                                    }
                                    let body = Bytes::from(body);
                                    for depth in [1, 2, 4, DEFAULT_MAX_DEPTH] {
                                        fast +=
                                            usize::from(decodes_as_the_general_path(&body, depth));
                                        checked += 1;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(
            fast > 1000,
            "the fast path took only {fast} of {checked} bodies"
        );
    }

    #[test]
    fn text_is_utf8_by_construction() {
        assert!(Text::new(Bytes::from_static(b"\xc3\x28")).is_err());
        assert_eq!(
            Text::new(Bytes::from_static("héllo".as_bytes())).map(|t| t.as_str().to_owned()),
            Ok("héllo".to_owned())
        );
        assert_eq!(Text::from_static("$/hello").as_str(), "$/hello");
        assert_eq!(Text::from("ünï".to_owned()).as_str(), "ünï");
    }
}
