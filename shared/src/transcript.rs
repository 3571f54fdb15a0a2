//! Splits flat-string call transcripts into speaker turns.

use std::borrow::Cow;

use serde::Serialize;

/// Longest text before a colon that we still read as a speaker name.
const MAX_SPEAKER_LEN: usize = 64;

/// One speaker turn, borrowing from the transcript it was cut from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn<'a> {
    pub speaker: &'a str,
    pub text: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u32>,
}

/// `Name: text` lines become turns; an optional leading `[hh:mm:ss]` or `[mm:ss]` stamp becomes
/// `start` in seconds; lines without a speaker continue the previous turn.
pub fn split_turns(transcript: &str) -> Vec<Turn<'_>> {
    let mut turns = Vec::new();
    split_lines(transcript.lines().map(Some), |_| true, &mut turns)
        .expect("decoded lines are always taken");
    turns
}

/// Bytes of keys and punctuation one turn adds around its speaker and text:
/// `{"speaker":"` `","text":"` `"},` (a `start` stamp adds a few more).
const TURN_OVERHEAD: usize = 26;

/// About how many bytes [`write_turns_json`] adds to `literal`: each `\n` escape may start a
/// turn, and every turn adds [`TURN_OVERHEAD`]. Sizing the output once spares a long transcript
/// the regrowth copies of its whole payload.
pub fn turns_json_growth(literal: &str) -> usize {
    let escapes = memchr::memchr_iter(b'\\', literal.as_bytes()).count();
    (escapes + 1) * TURN_OVERHEAD
}

/// Appends the turns of a flat transcript given as a JSON string literal, as JSON text, without
/// decoding it: split at its `\n` escapes, each turn's speaker and text stay escaped as they
/// came, so nothing is unescaped or escaped again. `false` (and `out` as it was) when the
/// literal uses an escape other than `\n`, `\"` and `\\` (which could hide a line break, a
/// colon or edge whitespace) or a speaker name holds an escape (its length would differ);
/// [`split_turns`] then decides. The turns equal those [`split_turns`] gives for the decoded
/// string.
pub fn write_turns_json(literal: &str, out: &mut String) -> bool {
    let Some(content) = literal.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return false;
    };
    let before = out.len();
    let mut json = JsonTurns { out, open: false };
    json.out.push('[');
    // A name read with its escapes could pass or fail the length rule unlike the decoded one.
    let split = split_lines(
        EscapedLines::new(content),
        |name| !name.as_bytes().contains(&b'\\'),
        &mut json,
    );
    json.close_turn();
    json.out.push(']');
    if split.is_none() {
        out.truncate(before);
    }
    split.is_some()
}

/// Where the turn rules put what they find, in whichever form the lines came.
trait TurnSink<'a> {
    fn turn(&mut self, speaker: &'a str, start: Option<u32>, text: &'a str);
    /// Adds a line to the last turn; `false` when there is no turn yet.
    fn continue_turn(&mut self, line: &'a str) -> bool;
}

impl<'a> TurnSink<'a> for Vec<Turn<'a>> {
    fn turn(&mut self, speaker: &'a str, start: Option<u32>, text: &'a str) {
        self.push(Turn {
            speaker,
            text: Cow::Borrowed(text),
            start,
        });
    }

    fn continue_turn(&mut self, line: &'a str) -> bool {
        let Some(turn) = self.last_mut() else {
            return false;
        };
        let text = turn.text.to_mut();
        text.push('\n');
        text.push_str(line);
        true
    }
}

/// Writes turns straight into a JSON array. Speaker and text are escaped string contents
/// already, and "Unknown" needs none; a turn's text stays open until the next turn begins.
struct JsonTurns<'o> {
    out: &'o mut String,
    open: bool,
}

impl JsonTurns<'_> {
    fn close_turn(&mut self) {
        if std::mem::take(&mut self.open) {
            self.out.push_str("\"}");
        }
    }
}

impl<'a> TurnSink<'a> for JsonTurns<'_> {
    fn turn(&mut self, speaker: &'a str, start: Option<u32>, text: &'a str) {
        if self.open {
            self.close_turn();
            self.out.push(',');
        }
        self.out.push_str("{\"speaker\":\"");
        self.out.push_str(speaker);
        if let Some(start) = start {
            self.out.push_str("\",\"start\":");
            self.out.push_str(itoa::Buffer::new().format(start));
            self.out.push_str(",\"text\":\"");
        } else {
            self.out.push_str("\",\"text\":\"");
        }
        self.out.push_str(text);
        self.open = true;
    }

    fn continue_turn(&mut self, line: &'a str) -> bool {
        if self.open {
            self.out.push_str("\\n");
            self.out.push_str(line);
        }
        self.open
    }
}

/// The turn rules over lines of either form; text before a line's first colon that `name_ok`
/// refuses makes the whole split `None`.
fn split_lines<'a>(
    lines: impl Iterator<Item = Option<&'a str>>,
    name_ok: impl Fn(&str) -> bool,
    sink: &mut impl TurnSink<'a>,
) -> Option<()> {
    for raw_line in lines {
        let line = trim(raw_line?);
        if line.is_empty() {
            continue;
        }
        let (start, rest) = take_stamp(line);
        let candidate = first_colon(rest.as_bytes()).map(|at| (&rest[..at], &rest[at + 1..]));
        if candidate.is_some_and(|(name, _)| !name_ok(name)) {
            return None;
        }
        match candidate.and_then(speaker_and_text) {
            Some((speaker, text)) => sink.turn(speaker, start, text),
            None if sink.continue_turn(rest) => {}
            None => sink.turn("Unknown", None, rest),
        }
    }
    Some(())
}

/// Lines of escaped JSON string content, split at `\n` escapes; yields `None` (and stops) at
/// an escape other than `\n`, `\"` or `\\`. One pass over the backslashes of the whole content.
struct EscapedLines<'a> {
    content: &'a str,
    backslashes: memchr::Memchr<'a>,
    /// Where the next line starts; `None` once the content is used up.
    line_start: Option<usize>,
    /// The byte after the last escape consumed (its second byte may be a backslash too).
    escaped_until: usize,
}

impl<'a> EscapedLines<'a> {
    fn new(content: &'a str) -> Self {
        Self {
            content,
            backslashes: memchr::memchr_iter(b'\\', content.as_bytes()),
            line_start: Some(0),
            escaped_until: 0,
        }
    }
}

impl<'a> Iterator for EscapedLines<'a> {
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.line_start?;
        let bytes = self.content.as_bytes();
        for at in self.backslashes.by_ref() {
            if at < self.escaped_until {
                continue;
            }
            self.escaped_until = at + 2;
            match bytes.get(at + 1) {
                Some(b'n') => {
                    self.line_start = Some(at + 2);
                    return Some(Some(&self.content[start..at]));
                }
                Some(b'"' | b'\\') => {}
                _ => {
                    self.line_start = None;
                    return Some(None);
                }
            }
        }
        self.line_start = None;
        // Like `str::lines`, a final empty line is not a line.
        (start < self.content.len()).then(|| Some(&self.content[start..]))
    }
}

/// Where a line's first colon is. A speaker's colon comes within a few bytes, where a plain scan
/// beats starting a vectorized search; a line without one is searched vectorized past that.
fn first_colon(line: &[u8]) -> Option<usize> {
    let head = line.len().min(MAX_SPEAKER_LEN);
    line[..head]
        .iter()
        .position(|&b| b == b':')
        .or_else(|| memchr::memchr(b':', &line[head..]).map(|at| head + at))
}

/// `str::trim`, answered without decoding a character when both ends are visible ASCII, as
/// they are on nearly every line.
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// `str::trim_start`, with the same shortcut.
fn trim_start(text: &str) -> &str {
    match text.as_bytes().first() {
        Some(first) if first.is_ascii_graphic() => text,
        _ => text.trim_start(),
    }
}

fn take_stamp(line: &str) -> (Option<u32>, &str) {
    let stamped = line
        .strip_prefix('[')
        .and_then(|inner_and_rest| inner_and_rest.split_once(']'))
        .and_then(|(inner, rest)| Some((stamp_seconds(inner)?, rest.trim_start())));
    match stamped {
        Some((start, rest)) => (Some(start), rest),
        None => (None, line),
    }
}

/// `mm:ss` or `hh:mm:ss` in seconds; `None` for other shapes and for stamps too large to count.
fn stamp_seconds(inner: &str) -> Option<u32> {
    let mut parts = 0;
    let seconds = inner.split(':').try_fold(0u32, |seconds, part| {
        parts += 1;
        seconds.checked_mul(60)?.checked_add(part.parse().ok()?)
    })?;
    (2..=3).contains(&parts).then_some(seconds)
}

/// The speaker and text of a line split at its first colon, if the part before reads as a name.
fn speaker_and_text<'a>((name, text): (&'a str, &'a str)) -> Option<(&'a str, &'a str)> {
    let name = trim(name);
    let plausible = !name.is_empty()
        && name.len() <= MAX_SPEAKER_LEN
        && !text.starts_with("//")
        && !name.chars().all(|c| c.is_ascii_digit());
    plausible.then(|| (name, trim_start(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn split_turns_json(literal: &str) -> Option<String> {
        let mut out = String::new();
        write_turns_json(literal, &mut out).then_some(out)
    }

    fn as_value(turns: Vec<Turn<'_>>) -> Value {
        serde_json::to_value(turns).unwrap()
    }

    fn turns_of(transcript: &str) -> Value {
        as_value(split_turns(transcript))
    }

    #[test]
    fn splits_named_lines_with_and_without_stamps() {
        assert_eq!(
            turns_of("Sarah: Hi John\nJohn: Hello Sarah\n[00:01:05] Sarah: Shall we start?"),
            json!([
                {"speaker": "Sarah", "text": "Hi John"},
                {"speaker": "John", "text": "Hello Sarah"},
                {"speaker": "Sarah", "text": "Shall we start?", "start": 65}
            ])
        );
    }

    #[test]
    fn continuation_lines_join_the_previous_turn() {
        assert_eq!(
            turns_of("intro line\nAna: first\nsecond line of Ana\n\n[02:03] Bo: ok"),
            json!([
                {"speaker": "Unknown", "text": "intro line"},
                {"speaker": "Ana", "text": "first\nsecond line of Ana"},
                {"speaker": "Bo", "text": "ok", "start": 123}
            ])
        );
    }

    #[test]
    fn colons_inside_text_and_urls_are_not_speakers() {
        assert_eq!(
            turns_of("Ana: meet at 10:30\nhttps://example.com/x"),
            json!([{"speaker": "Ana", "text": "meet at 10:30\nhttps://example.com/x"}])
        );
    }

    #[test]
    fn stamps_too_large_to_count_are_text() {
        let turns =
            split_turns("[4294967295:00] Ana: hi\n[71582788:15:00] Bo: ok\n[1:2:3:4] Cy: x");
        assert!(turns.iter().all(|turn| turn.start.is_none()), "{turns:?}");
        assert_eq!(
            split_turns("[1193046:28:15] Bo: ok")[0].start,
            Some(u32::MAX)
        );
        assert_eq!(split_turns("[1193046:28:16] Bo: ok")[0].start, None);
    }

    #[test]
    fn the_first_colon_is_found_near_and_far() {
        let far = format!("{}: x", "a".repeat(MAX_SPEAKER_LEN + 10));
        assert_eq!(first_colon(b"Ana: hi: there"), Some(3));
        assert_eq!(first_colon(far.as_bytes()), Some(MAX_SPEAKER_LEN + 10));
        assert_eq!(first_colon(b"no colon at all"), None);
        assert_eq!(first_colon(b""), None);
    }

    /// Random transcripts over the characters the rules care about, decoded and escaped: the
    /// escaped split, whenever it answers, gives exactly the decoded split's turns.
    #[test]
    fn the_escaped_split_agrees_with_the_decoded_split() {
        use rand::{Rng, SeedableRng};
        const PIECES: [&str; 24] = [
            "Ana",
            "Bo",
            ": ",
            ":",
            " ",
            "\n",
            "\n\n",
            "[00:01:05] ",
            "[02:03]",
            "[x]",
            "12",
            "https://x.io/a",
            "//",
            "\"",
            "\\",
            "\r\n",
            "\t",
            "\u{a0}",
            "é",
            "\u{3000}",
            "text",
            "meet at 10:30",
            "]",
            "\u{1}",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut escaped_answers, mut cases) = (0, 0);
        for _ in 0..20_000 {
            let pieces = rng.gen_range(0..14);
            let flat: String = (0..pieces)
                .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
                .collect();
            let literal = serde_json::to_string(&flat).unwrap();
            cases += 1;
            if let Some(turns) = split_turns_json(&literal) {
                escaped_answers += 1;
                let escaped: Value = serde_json::from_str(&turns).unwrap();
                assert_eq!(escaped, as_value(split_turns(&flat)), "{flat:?}");
            }
        }
        assert!(
            escaped_answers * 3 > cases,
            "the escaped split answered only {escaped_answers} of {cases}"
        );
    }

    #[test]
    fn the_length_estimate_covers_speaker_lines() {
        let flat: String = (0..50)
            .map(|i| format!("Speaker {}: line {i} of the call\n", i % 3))
            .collect();
        let literal = serde_json::to_string(&flat).unwrap();
        let turns = split_turns_json(&literal).unwrap();
        assert!(
            turns.len() <= literal.len() + turns_json_growth(&literal),
            "{turns}"
        );
    }

    #[test]
    fn the_escaped_split_declines_escapes_that_could_change_a_turn() {
        for flat in ["A: x\tB: y", "A: x\r\nB: y", "A\"B: x", "A: \u{1}"] {
            let literal = serde_json::to_string(flat).unwrap();
            assert!(split_turns_json(&literal).is_none(), "{flat:?}");
        }
        let literal = serde_json::to_string("A: say \"hi\" \\ bye\nB: ok").unwrap();
        let turns: Value = serde_json::from_str(&split_turns_json(&literal).unwrap()).unwrap();
        assert_eq!(
            turns,
            json!([{"speaker": "A", "text": "say \"hi\" \\ bye"}, {"speaker": "B", "text": "ok"}])
        );
    }
}
