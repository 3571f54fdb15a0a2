//! The emails an export sends, in the language it asked for: the link when the file is ready,
//! or why it could not be made. Each has a subject, a plain-text part and an HTML part.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::export::ExportJob;

/// The languages of the templates; anything else asked for is English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[serde(rename = "en-US")]
    EnUs,
    #[serde(rename = "zh-TW")]
    ZhTw,
}

impl Lang {
    pub fn parse_or_english(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            "zh-tw" | "zh_tw" | "zh-hant-tw" => Lang::ZhTw,
            _ => Lang::EnUs,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::EnUs => "en-US",
            Lang::ZhTw => "zh-TW",
        }
    }
}

/// One email, ready for any mailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The words of one language.
struct Words {
    ready_subject: &'static str,
    failed_subject: &'static str,
    greeting: &'static str,
    ready: &'static str,
    rows: &'static str,
    range: &'static str,
    from_start: &'static str,
    until_now: &'static str,
    link: &'static str,
    expires: &'static str,
    failed: &'static str,
    reason: &'static str,
    again: &'static str,
    closing: &'static str,
}

const EN_US: Words = Words {
    ready_subject: "Your Hookline delivery log export is ready",
    failed_subject: "Your Hookline delivery log export failed",
    greeting: "Hello,",
    ready: "The delivery log export you asked for is ready.",
    rows: "Rows",
    range: "Date range",
    from_start: "the oldest kept log",
    until_now: "the time of the export",
    link: "Download",
    expires: "The link expires at",
    failed: "The delivery log export you asked for could not be made.",
    reason: "Reason",
    again: "You can request the export again.",
    closing: "— Hookline",
};

const ZH_TW: Words = Words {
    ready_subject: "您的 Hookline 傳送紀錄匯出檔已準備好",
    failed_subject: "您的 Hookline 傳送紀錄匯出失敗",
    greeting: "您好：",
    ready: "您要求的傳送紀錄匯出檔已準備好。",
    rows: "筆數",
    range: "日期範圍",
    from_start: "最早保留的紀錄",
    until_now: "匯出時間",
    link: "下載",
    expires: "連結到期時間",
    failed: "您要求的傳送紀錄匯出無法完成。",
    reason: "原因",
    again: "您可以重新申請匯出。",
    closing: "— Hookline 敬上",
};

impl Lang {
    fn words(self) -> &'static Words {
        match self {
            Lang::EnUs => &EN_US,
            Lang::ZhTw => &ZH_TW,
        }
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Text safe inside HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl ExportEmail {
    /// The link to a finished job's file.
    pub fn ready(job: &ExportJob) -> Self {
        let words = job.request.lang.words();
        let request = &job.request;
        let from = request
            .start_date
            .map_or(words.from_start.to_owned(), stamp);
        let to = request.end_date.map_or(words.until_now.to_owned(), stamp);
        let url = job.download_url.clone().unwrap_or_default();
        let expires = job.expires_at.map(stamp).unwrap_or_default();
        let text = format!(
            "{greeting}\n\n{ready}\n\n{rows_label}: {rows}\n{range_label}: {from} – {to}\n{link_label}: {url}\n{expires_label}: {expires}\n\n{closing}\n",
            greeting = words.greeting,
            ready = words.ready,
            rows_label = words.rows,
            rows = job.rows,
            range_label = words.range,
            link_label = words.link,
            expires_label = words.expires,
            closing = words.closing,
        );
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"{lang}\"><body>\n<p>{greeting}</p>\n<p>{ready}</p>\n<ul><li>{rows_label}: {rows}</li><li>{range_label}: {from} – {to}</li></ul>\n<p><a href=\"{url}\">{link_label}</a></p>\n<p>{expires_label}: {expires}</p>\n<p>{closing}</p>\n</body></html>\n",
            lang = request.lang.tag(),
            greeting = words.greeting,
            ready = words.ready,
            rows_label = words.rows,
            rows = job.rows,
            range_label = words.range,
            from = escape(&from),
            to = escape(&to),
            url = escape(&url),
            link_label = words.link,
            expires_label = words.expires,
            closing = words.closing,
        );
        Self {
            to: request.email.clone(),
            subject: words.ready_subject.to_owned(),
            text,
            html,
        }
    }

    /// Why a failed job has no file.
    pub fn failed(job: &ExportJob) -> Self {
        let words = job.request.lang.words();
        let reason = job.error.clone().unwrap_or_default();
        let text = format!(
            "{}\n\n{}\n\n{}: {reason}\n\n{}\n\n{}\n",
            words.greeting, words.failed, words.reason, words.again, words.closing
        );
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"{}\"><body>\n<p>{}</p>\n<p>{}</p>\n<p>{}: {}</p>\n<p>{}</p>\n<p>{}</p>\n</body></html>\n",
            job.request.lang.tag(),
            words.greeting,
            words.failed,
            words.reason,
            escape(&reason),
            words.again,
            words.closing
        );
        Self {
            to: job.request.email.clone(),
            subject: words.failed_subject.to_owned(),
            text,
            html,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde_json::json;

    use super::*;
    use crate::export::ExportRequest;
    use crate::WorkspaceId;

    fn done(lang: &str) -> ExportJob {
        let request = ExportRequest::parse(&json!({"email": "ops@example.com", "lang": lang,
            "start_date": "2026-01-01T00:00:00Z"}))
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let job = ExportJob::new(WorkspaceId::generate(), request, now);
        job.done(30, 1234, "https://files.example/x?sig=a&b=c".into(), now)
    }

    #[test]
    fn the_english_link_email_has_every_part() {
        let email = ExportEmail::ready(&done("en-US"));
        assert_eq!(email.to, "ops@example.com");
        assert_eq!(email.subject, "Your Hookline delivery log export is ready");
        for part in [&email.text, &email.html] {
            assert!(part.contains("Hello,"), "{part}");
            assert!(part.contains("Rows: 30"), "{part}");
            assert!(
                part.contains("2026-01-01T00:00:00Z – the time of the export"),
                "{part}"
            );
            assert!(
                part.contains("The link expires at: 2026-01-02T00:00:00Z"),
                "{part}"
            );
        }
        assert!(email.text.contains("https://files.example/x?sig=a&b=c"));
        assert!(email
            .html
            .contains("<a href=\"https://files.example/x?sig=a&amp;b=c\">Download</a>"));
    }

    #[test]
    fn zh_tw_gets_the_traditional_chinese_template() {
        let email = ExportEmail::ready(&done("zh-TW"));
        assert_eq!(email.subject, "您的 Hookline 傳送紀錄匯出檔已準備好");
        assert!(email.text.contains("您好："));
        assert!(email.text.contains("筆數: 30"));
        assert!(email.html.contains("lang=\"zh-TW\""));
        assert!(!email.text.contains("Hello"));
    }

    #[test]
    fn a_failure_email_says_why_in_the_jobs_language() {
        let job = done("zh-TW").failed("<store> unavailable");
        let email = ExportEmail::failed(&job);
        assert_eq!(email.subject, "您的 Hookline 傳送紀錄匯出失敗");
        assert!(email.text.contains("原因: <store> unavailable"));
        assert!(email.html.contains("&lt;store&gt; unavailable"));
    }
}
