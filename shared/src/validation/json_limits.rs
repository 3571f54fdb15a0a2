//! The JSON limits: one rule for every body Hookline accepts, whatever its members mean.
//!
//! JSON's grammar lets a body nest without end, write numbers no 64-bit type holds and escape
//! half a surrogate pair. Members no other rule reads (`customMetadata`, unknown members) would
//! be stored and delivered as sent, so every subscriber's parser would meet them. The limits
//! are judged on the bytes, in one pass that builds no values:
//!
//! - **Depth**: the body is depth 1, and an object or array inside a container of depth `n` is
//!   depth `n + 1`; no object or array is deeper than [`MAX_DEPTH`]. Scalars add no depth.
//! - **Numbers**: each is held by an `i64`, a `u64` or a finite `f64` (read as serde_json reads
//!   it: `1e300` and a 30-digit integer are finite floats, `1e400` and 5,000 digits are not).
//! - **Text**: every string and key is Unicode: UTF-8, with surrogate escapes only in pairs.
//!
//! The first breach in document order is reported with the dotted path of the value (or key)
//! that breaks it, as the schema faults name their fields (`customMetadata.a.3`). The grammar
//! itself is not judged here: at the first byte that is not JSON the check stops and leaves the
//! parser to name the fault.

use std::borrow::Cow;
use std::fmt;

use serde::de::IgnoredAny;

use super::ValidationErrors;

/// The deepest an object or array may nest; the body itself is depth 1.
pub const MAX_DEPTH: usize = 32;

/// A number without an exponent whose integer part has at most this many digits is below
/// `f64::MAX` (about 1.8e308), so needs no closer look.
const FINITE_DIGITS: usize = 308;

/// Which limit a value breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// An object or array at depth [`MAX_DEPTH`] + 1.
    TooDeep,
    /// A number no `i64`, `u64` or finite `f64` holds.
    NumberOutOfRange,
    /// A `\uXXXX` escape of half a surrogate pair, without its other half (as written).
    LoneSurrogate(String),
    /// String bytes that are not UTF-8.
    NotUtf8,
}

/// The first breach of the limits in a body, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the offending value, or of the member whose key offends.
    pub path: String,
    /// Whether the member's key, not its value, breaks the limit.
    pub in_key: bool,
    pub breach: Breach,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.in_key { "Key" } else { "Text" };
        match &self.breach {
            Breach::TooDeep => write!(
                f,
                "Nested too deep: objects and arrays may nest at most {MAX_DEPTH} levels (the body is level 1)"
            ),
            Breach::NumberOutOfRange => f.write_str(
                "Number out of range: must fit a 64-bit integer or a finite 64-bit float",
            ),
            Breach::LoneSurrogate(escape) => write!(
                f,
                "{text} is not valid Unicode: lone surrogate escape {escape}"
            ),
            Breach::NotUtf8 => write!(f, "{text} is not valid Unicode: bytes that are not UTF-8"),
        }
    }
}

impl From<Violation> for ValidationErrors {
    fn from(violation: Violation) -> Self {
        ValidationErrors::field(violation.path.clone(), violation.to_string())
    }
}

/// Checks `body` against the JSON limits; the first breach, if any.
pub fn check(body: &[u8]) -> Result<(), Violation> {
    let mut scan = Scan {
        bytes: body,
        at: 0,
        utf8: std::str::from_utf8(body).is_ok(),
        frames: Vec::new(),
    };
    match scan.run() {
        Err(Stop::Breach(violation)) => Err(violation),
        Ok(()) | Err(Stop::NotJson) => Ok(()),
    }
}

/// Why the scan ended early.
enum Stop {
    Breach(Violation),
    /// A byte the grammar does not allow there: the parser's to report.
    NotJson,
}

/// What is wrong with a string literal: a breach of the limits, or not JSON at all.
enum Fault {
    Breach(Breach),
    NotJson,
}

/// What a value at the cursor turned out to be.
enum Read {
    Scalar,
    /// An object or array, now the innermost open container.
    Opened,
}

/// An open container: an object with the byte range of its current key's content, or an
/// array with the index of its current element.
enum Frame {
    Object { key: (usize, usize) },
    Array { index: usize },
}

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The whole body is UTF-8, so no string needs checking on its own.
    utf8: bool,
    /// At most [`MAX_DEPTH`] open containers, innermost last.
    frames: Vec<Frame>,
}

impl Scan<'_> {
    /// Walks the first JSON value in the body; what follows it is the parser's to judge.
    /// Iterative, so no body can exhaust the stack.
    fn run(&mut self) -> Result<(), Stop> {
        let mut want_value = true;
        loop {
            if want_value {
                want_value = match self.value()? {
                    Read::Scalar => false,
                    Read::Opened => self.first_item()?,
                };
                continue;
            }
            self.skip_whitespace();
            if self.frames.is_empty() {
                return Ok(());
            }
            let byte = self.next_byte()?;
            match (self.frames.last_mut(), byte) {
                (Some(Frame::Object { .. }), b',') => {
                    self.key()?;
                    want_value = true;
                }
                (Some(Frame::Array { index }), b',') => {
                    *index += 1;
                    want_value = true;
                }
                (Some(Frame::Object { .. }), b'}') | (Some(Frame::Array { .. }), b']') => {
                    self.frames.pop();
                }
                _ => return Err(Stop::NotJson),
            }
        }
    }

    /// Right after `{` or `[`: closes the container if it is empty, else reads an object's
    /// first key. Whether a value is wanted next.
    fn first_item(&mut self) -> Result<bool, Stop> {
        self.skip_whitespace();
        let (close, object) = match self.frames.last() {
            Some(Frame::Object { .. }) => (b'}', true),
            _ => (b']', false),
        };
        if self.peek()? == close {
            self.at += 1;
            self.frames.pop();
            return Ok(false);
        }
        if object {
            self.key()?;
        }
        Ok(true)
    }

    /// One value at the cursor: a scalar is read whole, a container is opened.
    fn value(&mut self) -> Result<Read, Stop> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' => self.open(Frame::Object { key: (0, 0) }),
            b'[' => self.open(Frame::Array { index: 0 }),
            b'"' => match self.string() {
                Ok(_) => Ok(Read::Scalar),
                Err(fault) => Err(self.stop(fault, false)),
            },
            b'-' | b'0'..=b'9' => self.number().map(|()| Read::Scalar),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(Stop::NotJson),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<Read, Stop> {
        if self.frames.len() == MAX_DEPTH {
            return Err(self.stop(Fault::Breach(Breach::TooDeep), false));
        }
        self.at += 1;
        self.frames.push(frame);
        Ok(Read::Opened)
    }

    /// A member's key and its colon; the key becomes the innermost object's current one.
    fn key(&mut self) -> Result<(), Stop> {
        self.skip_whitespace();
        if self.peek()? != b'"' {
            return Err(Stop::NotJson);
        }
        let start = self.at + 1;
        let scanned = self.string();
        let end = match &scanned {
            Ok(end) => *end,
            Err(_) => self.literal_end(start),
        };
        if let Some(Frame::Object { key }) = self.frames.last_mut() {
            *key = (start, end);
        }
        if let Err(fault) = scanned {
            return Err(self.stop(fault, true));
        }
        self.skip_whitespace();
        match self.next_byte()? {
            b':' => Ok(()),
            _ => Err(Stop::NotJson),
        }
    }

    /// Reads a string literal at the cursor (on its opening quote), leaving the cursor after
    /// its closing quote; returns where its content ends. Its escapes must pair surrogates and
    /// its bytes be UTF-8.
    fn string(&mut self) -> Result<usize, Fault> {
        self.at += 1;
        let start = self.at;
        loop {
            let Some(offset) = memchr::memchr2(b'"', b'\\', &self.bytes[self.at..]) else {
                return Err(Fault::NotJson);
            };
            self.at += offset;
            if self.bytes[self.at] == b'"' {
                break;
            }
            self.escape()?;
        }
        let end = self.at;
        self.at += 1;
        if !self.utf8 && std::str::from_utf8(&self.bytes[start..end]).is_err() {
            return Err(Fault::Breach(Breach::NotUtf8));
        }
        Ok(end)
    }

    /// One escape at the cursor (on its backslash); surrogates must come as a high-low pair.
    fn escape(&mut self) -> Result<(), Fault> {
        let length = match self.bytes.get(self.at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
            Some(b'u') => match self.hex_escape(self.at).ok_or(Fault::NotJson)? {
                0xD800..=0xDBFF
                    if matches!(self.hex_escape(self.at + 6), Some(0xDC00..=0xDFFF)) =>
                {
                    12
                }
                0xD800..=0xDFFF => {
                    let escape = String::from_utf8_lossy(&self.bytes[self.at..self.at + 6]);
                    return Err(Fault::Breach(Breach::LoneSurrogate(escape.into_owned())));
                }
                _ => 6,
            },
            _ => return Err(Fault::NotJson),
        };
        self.at += length;
        Ok(())
    }

    /// The code unit of a `\uXXXX` escape starting at `at`, if one stands there.
    fn hex_escape(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 6)?.strip_prefix(b"\\u")?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }

    /// Where the content of the string literal whose content starts at `start` ends (or the
    /// body does), stepping over escapes without judging them.
    fn literal_end(&self, start: usize) -> usize {
        let mut at = start;
        while let Some(offset) = memchr::memchr2(b'"', b'\\', &self.bytes[at..]) {
            at += offset;
            if self.bytes[at] == b'"' {
                return at;
            }
            at = (at + 2).min(self.bytes.len());
        }
        self.bytes.len()
    }

    /// A number at the cursor: one without an exponent and of at most [`FINITE_DIGITS`] before
    /// its point always fits; anything else is read by serde_json, so a number is in range
    /// exactly when a `serde_json::Value` can hold it.
    fn number(&mut self) -> Result<(), Stop> {
        let rest = &self.bytes[self.at..];
        let length = rest
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let token = &rest[..length];
        let digits = token.strip_prefix(b"-").unwrap_or(token);
        let plain = !digits.iter().any(|b| matches!(b, b'e' | b'E'))
            && digits.iter().take_while(|b| b.is_ascii_digit()).count() <= FINITE_DIGITS;
        if !plain && serde_json::from_slice::<serde_json::Number>(token).is_err() {
            // Out of range only if it is a number at all.
            if serde_json::from_slice::<IgnoredAny>(token).is_err() {
                return Err(Stop::NotJson);
            }
            return Err(self.stop(Fault::Breach(Breach::NumberOutOfRange), false));
        }
        self.at += length;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<Read, Stop> {
        if !self.bytes[self.at..].starts_with(word) {
            return Err(Stop::NotJson);
        }
        self.at += word.len();
        Ok(Read::Scalar)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Result<u8, Stop> {
        self.bytes.get(self.at).copied().ok_or(Stop::NotJson)
    }

    fn next_byte(&mut self) -> Result<u8, Stop> {
        let byte = self.peek()?;
        self.at += 1;
        Ok(byte)
    }

    /// Ends the scan: a breach at the current path, or a grammar stop.
    fn stop(&self, fault: Fault, in_key: bool) -> Stop {
        match fault {
            Fault::Breach(breach) => Stop::Breach(Violation {
                path: self.path(),
                in_key,
                breach,
            }),
            Fault::NotJson => Stop::NotJson,
        }
    }

    /// The dotted path of the value at the cursor: keys decoded, array indexes as numbers.
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.frames {
            if !path.is_empty() {
                path.push('.');
            }
            match frame {
                Frame::Object { key: (start, end) } => path.push_str(&self.key_text(*start, *end)),
                Frame::Array { index } => path.push_str(itoa::Buffer::new().format(*index)),
            }
        }
        path
    }

    /// A key's content as the caller meant it; one that cannot be decoded (the key that
    /// breaks the limits) is shown as written.
    fn key_text(&self, start: usize, end: usize) -> Cow<'_, str> {
        let content = &self.bytes[start..end];
        if memchr::memchr(b'\\', content).is_some() {
            let literal = self.bytes.get(start - 1..=end).unwrap_or(content);
            if let Ok(decoded) = serde_json::from_slice::<String>(literal) {
                return Cow::Owned(decoded);
            }
        }
        String::from_utf8_lossy(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breach(body: &str) -> Option<(String, Breach)> {
        check(body.as_bytes())
            .err()
            .map(|violation| (violation.path, violation.breach))
    }

    fn nested(open: &str, close: &str, depth: usize, inner: &str) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    /// `{"customMetadata": ...}` with `levels` objects nested under it, keyed `a`.
    fn metadata_objects(levels: usize) -> String {
        format!(
            r#"{{"customMetadata": {}}}"#,
            nested(r#"{"a":"#, "}", levels - 1, "{}")
        )
    }

    #[test]
    fn depth_counts_the_body_as_one() {
        assert_eq!(breach("{}"), None);
        assert_eq!(breach(&nested("[", "]", MAX_DEPTH, "")), None);
        assert_eq!(
            breach(&nested("[", "]", MAX_DEPTH + 1, "")),
            Some((vec!["0"; MAX_DEPTH].join("."), Breach::TooDeep))
        );
        // The body, customMetadata, then 30 more levels: 32 in all.
        assert_eq!(breach(&metadata_objects(MAX_DEPTH - 1)), None);
        let too_deep = format!("customMetadata{}", ".a".repeat(MAX_DEPTH - 1));
        assert_eq!(
            breach(&metadata_objects(MAX_DEPTH)),
            Some((too_deep, Breach::TooDeep))
        );
    }

    #[test]
    fn scalars_add_no_depth() {
        let body = nested("[", "]", MAX_DEPTH, r#"1, "x", true, null, {}"#);
        assert_eq!(
            breach(&body),
            Some((vec!["0"; MAX_DEPTH - 1].join(".") + ".4", Breach::TooDeep))
        );
        let body = nested("[", "]", MAX_DEPTH, r#"1, "x", true, null, []"#);
        assert!(breach(&body).is_some(), "an empty array is a level too");
        let body = nested("[", "]", MAX_DEPTH, r#"1, "x", true, null"#);
        assert_eq!(breach(&body), None);
    }

    #[test]
    fn very_deep_bodies_are_refused_at_the_first_level_too_many() {
        let arrays = format!(r#"{{"vendor": {}}}"#, nested("[", "]", 120_000, ""));
        let path = format!("vendor{}", ".0".repeat(MAX_DEPTH - 1));
        assert_eq!(breach(&arrays), Some((path, Breach::TooDeep)));
        let objects = metadata_objects(10_000);
        let path = format!("customMetadata{}", ".a".repeat(MAX_DEPTH - 1));
        assert_eq!(breach(&objects), Some((path, Breach::TooDeep)));
    }

    #[test]
    fn numbers_fit_an_integer_or_a_finite_float() {
        for fine in [
            "1.5",
            "-3",
            "0",
            "-0",
            "-0.0",
            "18446744073709551615",
            "-9223372036854775808",
            "1e300",
            "-1.7976931348623157e308",
            "1E+3",
            "1e-400",
            "123456789012345678901234567890",
        ] {
            assert_eq!(breach(&format!(r#"{{"n": [{fine}]}}"#)), None, "{fine}");
        }
        // Around f64::MAX (about 1.8e308) without an exponent: 308 digits always fit, more may.
        for (digits, fits) in [
            (format!("{}.99", "9".repeat(FINITE_DIGITS)), true),
            (format!("-1{}", "0".repeat(FINITE_DIGITS)), true),
            (format!("-2{}", "0".repeat(FINITE_DIGITS)), false),
            (format!("{}.5", "9".repeat(FINITE_DIGITS + 1)), false),
        ] {
            let body = format!(r#"{{"n": {digits}}}"#);
            assert_eq!(breach(&body).is_none(), fits, "{} digits", digits.len());
        }
        for out in [
            "1e400".to_owned(),
            "-1e400".to_owned(),
            "1.8e308".to_owned(),
            "9".repeat(5_000),
            format!("-{}", "1".repeat(400)),
        ] {
            assert_eq!(
                breach(&format!(r#"{{"a": {{"b": [0, 1, 2, {out}]}}}}"#)),
                Some(("a.b.3".to_owned(), Breach::NumberOutOfRange)),
                "{out}"
            );
        }
    }

    #[test]
    fn strings_and_keys_are_unicode() {
        for fine in [
            r#""\ud83d\ude00""#,
            r#""\uD83D\uDE00 and \u00fc""#,
            r#""plain ü 😀""#,
            r#""\"\\\/\b\f\n\r\t""#,
        ] {
            assert_eq!(breach(&format!(r#"{{"s": {fine}}}"#)), None, "{fine}");
            assert_eq!(breach(&format!(r#"{{{fine}: 1}}"#)), None, "key {fine}");
        }
        let lone = |escape: &str| Breach::LoneSurrogate(escape.to_owned());
        for (literal, escape) in [
            (r#""\ud800""#, r"\ud800"),
            (r#""\udc00""#, r"\udc00"),
            (r#""x\uDBFFy""#, r"\uDBFF"),
            (r#""\ud83d\u0041""#, r"\ud83d"),
            (r#""\ude00\ud83d""#, r"\ude00"),
            (r#""\ud83d""#, r"\ud83d"),
        ] {
            let body = format!(r#"{{"vendor": {{"s": ["ok", {literal}]}}}}"#);
            assert_eq!(
                breach(&body),
                Some(("vendor.s.1".to_owned(), lone(escape))),
                "{literal}"
            );
        }
        let key = check(br#"{"customMetadata": {"a\ud800b": 1}}"#).unwrap_err();
        assert_eq!(key.path, r"customMetadata.a\ud800b");
        assert!(key.in_key);
        assert_eq!(key.breach, lone(r"\ud800"));
        assert!(
            key.to_string().starts_with("Key is not valid Unicode"),
            "{key}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named() {
        let mut body = br#"{"a": ["x", "y"#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""]}"#);
        let violation = check(&body).unwrap_err();
        assert_eq!(
            (violation.path.as_str(), &violation.breach),
            ("a.1", &Breach::NotUtf8)
        );
    }

    #[test]
    fn escaped_keys_are_named_decoded() {
        let violation = check(br#"{"caf\u00e9": {"x\"y": 1e999}}"#).unwrap_err();
        assert_eq!(violation.path, "café.x\"y");
    }

    #[test]
    fn every_message_names_its_rule() {
        let message = |body: &str| check(body.as_bytes()).unwrap_err().to_string();
        assert!(message(&nested("[", "]", 40, "")).contains("at most 32 levels"));
        assert!(message(r#"{"n": 1e400}"#).contains("Number out of range"));
        assert!(message(r#"{"s": "\udc00"}"#).contains(r"lone surrogate escape \udc00"));
    }

    #[test]
    fn what_is_not_json_is_left_to_the_parser() {
        for body in [
            "",
            "{",
            r#"{"a": }"#,
            r#"{"a" 1}"#,
            r#"{"a": 01x}"#,
            r#"{"a": "\x"}"#,
            r#"{"a": "\u12"}"#,
            r#"{"a": "unterminated"#,
            r#"{"a": tru}"#,
            r#"{"a": 1.e5}"#,
            r#"[1, 2,, 3]"#,
            r#"{"a": 1} trailing"#,
            "nul",
        ] {
            assert_eq!(breach(body), None, "{body}");
        }
        // A breach before the first stray byte is still reported.
        assert!(breach(r#"{"a": 1e400, }"#).is_some());
    }

    #[test]
    fn whitespace_anywhere_is_allowed() {
        let body = " \n{ \"a\" :\t[ 1 , { \"b\" : \"\\ud800\" } ] } ";
        assert_eq!(
            breach(body),
            Some(("a.1.b".to_owned(), Breach::LoneSurrogate(r"\ud800".into())))
        );
    }
}
