//! Splits flat-string call transcripts into speaker turns.

use serde_json::{json, Map, Value};

/// Longest text before a colon that we still read as a speaker name.
const MAX_SPEAKER_LEN: usize = 64;

/// `Name: text` lines become turns; an optional leading `[hh:mm:ss]` or `[mm:ss]` stamp becomes
/// `start` in seconds; lines without a speaker continue the previous turn.
pub fn split_turns(transcript: &str) -> Vec<Value> {
    let mut turns: Vec<Map<String, Value>> = Vec::new();
    for raw_line in transcript.lines() {
        let line = raw_line.trim();
        if line.is_empty() {
            continue;
        }
        let (start, rest) = take_stamp(line);
        match take_speaker(rest) {
            Some((speaker, text)) => {
                let mut turn = Map::new();
                turn.insert("speaker".into(), Value::String(speaker.to_owned()));
                turn.insert("text".into(), Value::String(text.to_owned()));
                if let Some(seconds) = start {
                    turn.insert("start".into(), json!(seconds));
                }
                turns.push(turn);
            }
            None => match turns.last_mut() {
                Some(turn) => {
                    if let Some(Value::String(text)) = turn.get_mut("text") {
                        text.push('\n');
                        text.push_str(rest);
                    }
                }
                None => {
                    let mut turn = Map::new();
                    turn.insert("speaker".into(), Value::String("Unknown".into()));
                    turn.insert("text".into(), Value::String(rest.to_owned()));
                    turns.push(turn);
                }
            },
        }
    }
    turns.into_iter().map(Value::Object).collect()
}

fn take_stamp(line: &str) -> (Option<u32>, &str) {
    let Some(inner_and_rest) = line.strip_prefix('[') else {
        return (None, line);
    };
    let Some((inner, rest)) = inner_and_rest.split_once(']') else {
        return (None, line);
    };
    let parts: Vec<&str> = inner.split(':').collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse::<u32>().ok()).collect();
    match numbers.as_deref() {
        Some([m, s]) => (Some(m * 60 + s), rest.trim_start()),
        Some([h, m, s]) => (Some(h * 3600 + m * 60 + s), rest.trim_start()),
        _ => (None, line),
    }
}

fn take_speaker(line: &str) -> Option<(&str, &str)> {
    let (name, text) = line.split_once(':')?;
    let name = name.trim();
    let plausible = !name.is_empty()
        && name.len() <= MAX_SPEAKER_LEN
        && !text.starts_with("//")
        && !name.chars().all(|c| c.is_ascii_digit());
    plausible.then(|| (name, text.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_named_lines_with_and_without_stamps() {
        let turns =
            split_turns("Sarah: Hi John\nJohn: Hello Sarah\n[00:01:05] Sarah: Shall we start?");
        assert_eq!(
            Value::Array(turns),
            json!([
                {"speaker": "Sarah", "text": "Hi John"},
                {"speaker": "John", "text": "Hello Sarah"},
                {"speaker": "Sarah", "text": "Shall we start?", "start": 65}
            ])
        );
    }

    #[test]
    fn continuation_lines_join_the_previous_turn() {
        let turns = split_turns("intro line\nAna: first\nsecond line of Ana\n\n[02:03] Bo: ok");
        assert_eq!(
            Value::Array(turns),
            json!([
                {"speaker": "Unknown", "text": "intro line"},
                {"speaker": "Ana", "text": "first\nsecond line of Ana"},
                {"speaker": "Bo", "text": "ok", "start": 123}
            ])
        );
    }

    #[test]
    fn colons_inside_text_and_urls_are_not_speakers() {
        let turns = split_turns("Ana: meet at 10:30\nhttps://example.com/x");
        assert_eq!(
            Value::Array(turns),
            json!([{"speaker": "Ana", "text": "meet at 10:30\nhttps://example.com/x"}])
        );
    }
}
