//! The HTTP side of delivery: one attempt to POST a signed event to a subscriber's URL.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{redirect, Client, Response, StatusCode};
use url::Url;

use super::signing::sign;
use super::ssrf::{GuardedResolver, Lookup, TargetPolicy, TargetRefused};

/// Names Hookline and where to read about the traffic, for receivers inspecting their logs.
pub const USER_AGENT: &str = concat!(
    "Hookline-Webhooks/",
    env!("CARGO_PKG_VERSION"),
    " (+https://hookline.dev)"
);

/// How delivery attempts behave; fixed for the life of a [`WebhookSender`].
#[derive(Clone, Copy, Debug)]
pub struct SenderConfig {
    /// Deadline for the whole attempt: connecting, sending and reading the response.
    pub timeout: Duration,
    /// Response body bytes kept for the delivery log; the rest is never read.
    pub max_response_bytes: usize,
    pub policy: TargetPolicy,
}

impl SenderConfig {
    pub fn production() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            max_response_bytes: 20 * 1024,
            policy: TargetPolicy {
                allow_private: false,
            },
        }
    }

    /// Production limits, but loopback and private targets are reachable (metadata never is).
    pub fn local_development() -> Self {
        Self::production_allowing_private(true)
    }

    /// Production limits, with private targets reachable only when `allow_private` says so.
    pub fn production_allowing_private(allow_private: bool) -> Self {
        Self {
            policy: TargetPolicy { allow_private },
            ..Self::production()
        }
    }
}

/// How an attempt ended, as the retry logic needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx response.
    Success,
    /// Anything else worth retrying: non-2xx (3xx included), refusal, network error, timeout.
    Failure,
    /// 410: the receiver asks us to stop, so the subscription is paused rather than retried.
    Gone,
}

/// One delivery attempt, as recorded in the delivery log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    /// `None` when no response arrived.
    pub status_code: Option<u16>,
    /// At most `max_response_bytes`, invalid UTF-8 replaced.
    pub response_body: String,
    pub duration_ms: u64,
    /// Why the attempt failed. With a status, it explains what the status alone does not (an
    /// unfollowed redirect, a body that broke off); a plain non-2xx status has no error.
    pub error: Option<String>,
    /// The receiver's `Retry-After`, read on 429 and 503 only; the caller applies its bounds.
    pub retry_after: Option<Duration>,
    /// The headers sent (or that would have been sent when refused before connecting), for
    /// showing a test delivery to the user.
    pub request_headers: Vec<(String, String)>,
}

/// Sends deliveries over one connection-pooling client, built once per cold start.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: Client,
    config: SenderConfig,
    guard: GuardedResolver,
}

impl WebhookSender {
    pub fn new(config: SenderConfig) -> Self {
        Self::with_lookup(config, Lookup::System)
    }

    /// A sender whose guard looks host names up in `lookup`.
    pub fn with_lookup(config: SenderConfig, lookup: Lookup) -> Self {
        let guard = config.policy.resolver_with(lookup);
        let client = Client::builder()
            .timeout(config.timeout)
            .redirect(redirect::Policy::none())
            .user_agent(USER_AGENT)
            // A proxy would resolve and connect on our behalf, bypassing the guarded resolver.
            .no_proxy()
            .dns_resolver(Arc::new(guard.clone()))
            .build()
            .expect("the HTTP client builds with the bundled rustls configuration");
        Self {
            client,
            config,
            guard,
        }
    }

    /// The guard every connection of this sender goes through, for checking a URL when it is
    /// given rather than only when it is called.
    pub fn guard(&self) -> &GuardedResolver {
        &self.guard
    }

    /// POSTs `body` signed with `secrets` as a Standard Webhooks delivery.
    ///
    /// Never fails: anything that goes wrong is an [`Attempt`] with outcome `Failure`.
    pub async fn send(
        &self,
        url: &str,
        webhook_id: &str,
        timestamp: i64,
        body: &str,
        secrets: &[&str],
    ) -> Attempt {
        let target = self.target(url);
        self.attempt(target, webhook_id, timestamp, body, secrets)
            .await
    }

    fn target(&self, url: &str) -> Result<Url, String> {
        let url = Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        self.config.policy.check_url(&url).map_err(|reason| {
            let target = url.host_str().unwrap_or(url.as_str());
            format!("refusing to connect to {target}: {reason}")
        })?;
        Ok(url)
    }

    /// `target` is the checked URL or why it was refused, so a refusal is recorded like any
    /// other failed attempt (with the headers that would have been sent).
    async fn attempt(
        &self,
        target: Result<Url, String>,
        webhook_id: &str,
        timestamp: i64,
        body: &str,
        secrets: &[&str],
    ) -> Attempt {
        let started = Instant::now();
        let signature = sign(secrets, webhook_id, timestamp, body);
        let headers = delivery_headers(webhook_id, timestamp, &signature);
        let mut attempt = Attempt {
            outcome: AttemptOutcome::Failure,
            status_code: None,
            response_body: String::new(),
            duration_ms: 0,
            error: None,
            retry_after: None,
            request_headers: vec![
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), USER_AGENT.into()),
                ("webhook-id".into(), webhook_id.into()),
                ("webhook-timestamp".into(), timestamp.to_string()),
                ("webhook-signature".into(), signature),
            ],
        };
        let result = match (target, headers) {
            (Ok(url), Ok(headers)) => self.exchange(url, headers, body, &mut attempt).await,
            (Err(refusal), _) | (Ok(_), Err(refusal)) => Err(refusal),
        };
        attempt.error = result.err();
        attempt.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        attempt
    }

    /// Fills in the response parts of `attempt`; `Err` is the attempt's error text.
    async fn exchange(
        &self,
        url: Url,
        headers: HeaderMap,
        body: &str,
        attempt: &mut Attempt,
    ) -> Result<(), String> {
        let mut response = self
            .client
            .post(url)
            .headers(headers)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| self.describe(&e))?;

        let status = response.status();
        attempt.status_code = Some(status.as_u16());
        attempt.outcome = if status.is_success() {
            AttemptOutcome::Success
        } else if status == StatusCode::GONE {
            AttemptOutcome::Gone
        } else {
            AttemptOutcome::Failure
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            attempt.retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
        }
        let redirect = status.is_redirection().then(|| {
            match response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                Some(location) => format!("redirect to {location} not followed"),
                None => format!("{status} is a redirect status; redirects are not followed"),
            }
        });

        let (bytes, read_error) = read_capped(&mut response, self.config.max_response_bytes).await;
        attempt.response_body = lossy_capped(&bytes, self.config.max_response_bytes);
        match (redirect, read_error) {
            (Some(redirect), _) => Err(redirect),
            (None, Some(e)) => Err(format!("reading the response body: {}", self.describe(&e))),
            // A log of a refused attempt says why, not only its status column.
            (None, None) if !status.is_success() => Err(format!("HTTP {}", status.as_u16())),
            (None, None) => Ok(()),
        }
    }

    /// A delivery-log sentence for a reqwest error. Its own text ("error sending request for
    /// url ...") and the wrappers below it only say that something failed; the innermost
    /// cause ("Connection refused", a TLS alert, our SSRF refusal) says what.
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("timed out after {}", human_duration(self.config.timeout));
        }
        let mut innermost: &dyn Error = error;
        while let Some(cause) = innermost.source() {
            if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
                return refused.to_string();
            }
            innermost = cause;
        }
        if !error.is_connect() {
            return format!("request failed: {innermost}");
        }
        let target = error.url().and_then(|url| {
            Some(format!(
                "{}:{}",
                url.host_str()?,
                url.port_or_known_default()?
            ))
        });
        match target {
            Some(target) => format!("could not connect to {target}: {innermost}"),
            None => format!("could not connect: {innermost}"),
        }
    }
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The headers a delivery adds to the client's own (`user-agent`), or why it must not be sent.
fn delivery_headers(
    webhook_id: &str,
    timestamp: i64,
    signature: &str,
) -> Result<HeaderMap, String> {
    let id = HeaderValue::from_str(webhook_id)
        .map_err(|_| format!("invalid value for header {WEBHOOK_ID}: {webhook_id:?}"))?;
    if signature.is_empty() {
        // Receivers must reject unsigned deliveries, so sending one only wastes an attempt.
        return Err("no usable signing secret: delivery not sent unsigned".into());
    }
    let signature = HeaderValue::from_str(signature)
        .map_err(|_| format!("invalid value for header {WEBHOOK_SIGNATURE}: {signature:?}"))?;
    let mut map = HeaderMap::with_capacity(4);
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(WEBHOOK_ID, id);
    map.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
    map.insert(WEBHOOK_SIGNATURE, signature);
    Ok(map)
}

/// Reads at most `max` bytes. Stopping early drops the connection, so a receiver answering
/// with megabytes costs us only what we keep.
async fn read_capped(response: &mut Response, max: usize) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut bytes = Vec::new();
    while bytes.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(max - bytes.len());
                bytes.extend_from_slice(&chunk[..take]);
            }
            Ok(None) => break,
            Err(e) => return (bytes, Some(e)),
        }
    }
    (bytes, None)
}

/// Lossy decoding can grow the text (a cut multi-byte character becomes a 3-byte U+FFFD), so
/// the cap is applied again on a character boundary.
fn lossy_capped(bytes: &[u8], max: usize) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `Retry-After` is either delay-seconds or an HTTP date; a date in the past means now.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate, the form senders must use, is valid RFC 2822.
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

fn human_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &str = r#"{"id":"evt_1","event_type":"thing.created"}"#;
    const MIB: usize = 1024 * 1024;

    /// A request as the test server received it.
    #[derive(Debug)]
    struct Received {
        request_line: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// What the test server does once it has read a request.
    #[derive(Clone)]
    enum Reply {
        /// Writes these bytes and closes.
        Raw(String),
        /// Never answers.
        Hang,
        /// Announces `declared` body bytes, sends `sent` of them, then holds the connection.
        Large { declared: usize, sent: usize },
        /// Sends `total` body bytes with chunked encoding, then closes.
        Chunked { total: usize },
    }

    /// A one-behaviour HTTP/1.1 server on 127.0.0.1, stopped when dropped.
    struct Server {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        received: mpsc::UnboundedReceiver<Received>,
        task: JoinHandle<()>,
    }

    impl Server {
        async fn start(reply: Reply) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connections = Arc::new(AtomicUsize::new(0));
            let (tx, received) = mpsc::unbounded_channel();
            let counter = connections.clone();
            let task = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let (tx, reply) = (tx.clone(), reply.clone());
                    tokio::spawn(handle(stream, reply, tx));
                }
            });
            Self {
                addr,
                connections,
                received,
                task,
            }
        }

        fn url(&self) -> String {
            format!("http://{}/hook", self.addr)
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn handle(mut stream: TcpStream, reply: Reply, tx: mpsc::UnboundedSender<Received>) {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let _ = tx.send(request);
        match reply {
            Reply::Raw(response) => {
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
            Reply::Hang => std::future::pending().await,
            Reply::Large { declared, sent } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {declared}\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let block = vec![b'x'; 64 * 1024];
                let mut written = 0;
                while written < sent {
                    if stream.write_all(&block).await.is_err() {
                        return;
                    }
                    written += block.len();
                }
                std::future::pending::<()>().await;
            }
            Reply::Chunked { total } => {
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let block = vec![b'y'; 64 * 1024];
                let mut written = 0;
                while written < total {
                    let chunk = format!("{:x}\r\n", block.len());
                    let ok = stream.write_all(chunk.as_bytes()).await.is_ok()
                        && stream.write_all(&block).await.is_ok()
                        && stream.write_all(b"\r\n").await.is_ok();
                    if !ok {
                        return;
                    }
                    written += block.len();
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            }
        }
    }

    async fn read_request(stream: &mut TcpStream) -> Option<Received> {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
        let mut lines = head.split("\r\n");
        let request_line = lines.next()?.to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Received {
            request_line,
            headers,
            body: String::from_utf8(body).ok()?,
        })
    }

    fn response(status: &str, extra_headers: &str, body: &str) -> Reply {
        Reply::Raw(format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        ))
    }

    fn local_sender() -> WebhookSender {
        WebhookSender::new(SenderConfig::local_development())
    }

    async fn send(sender: &WebhookSender, server: &Server) -> Attempt {
        sender
            .send(&server.url(), "msg_1", 1_700_000_000, BODY, &[SECRET])
            .await
    }

    #[tokio::test]
    async fn a_2xx_is_a_success_with_standard_webhooks_headers() {
        let mut server = Server::start(response("200 OK", "", "thanks")).await;
        let timestamp = Utc::now().timestamp();
        let attempt = local_sender()
            .send(&server.url(), "msg_42", timestamp, BODY, &[SECRET])
            .await;

        assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
        assert_eq!(attempt.status_code, Some(200));
        assert_eq!(attempt.response_body, "thanks");
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.retry_after, None);

        let received = server.received.recv().await.unwrap();
        assert_eq!(received.request_line, "POST /hook HTTP/1.1");
        assert_eq!(received.body, BODY);
        let expected_signature = sign(&[SECRET], "msg_42", timestamp, BODY);
        for (name, value) in [
            ("content-type", "application/json"),
            ("user-agent", USER_AGENT),
            ("webhook-id", "msg_42"),
            ("webhook-timestamp", timestamp.to_string().as_str()),
            ("webhook-signature", expected_signature.as_str()),
        ] {
            assert_eq!(received.header(name), Some(value), "header {name}");
            let recorded = attempt.request_headers.iter().find(|(n, _)| n == name);
            assert_eq!(recorded.map(|(_, v)| v.as_str()), Some(value), "{name}");
        }
        assert!(USER_AGENT.starts_with("Hookline-Webhooks/"));
        assert_eq!(attempt.request_headers.len(), 5);
    }

    /// The attempt against a server that answers once with `status`, `headers` and `body`.
    async fn answered(status: &str, headers: &str, body: &str) -> Attempt {
        let server = Server::start(response(status, headers, body)).await;
        send(&local_sender(), &server).await
    }

    #[tokio::test]
    async fn any_2xx_counts_as_success() {
        let attempt = answered("204 No Content", "", "").await;
        assert_eq!(attempt.outcome, AttemptOutcome::Success);
        assert_eq!(attempt.status_code, Some(204));
    }

    #[tokio::test]
    async fn a_500_is_a_failure_with_the_body_kept() {
        let attempt = answered("500 Internal Server Error", "", "boom").await;
        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, Some(500));
        assert_eq!(attempt.response_body, "boom");
        assert_eq!(
            attempt.error.as_deref(),
            Some("HTTP 500"),
            "the log says why"
        );
        assert_eq!(attempt.retry_after, None);
    }

    #[tokio::test]
    async fn a_410_is_gone() {
        let attempt = answered("410 Gone", "", "").await;
        assert_eq!(attempt.outcome, AttemptOutcome::Gone);
        assert_eq!(attempt.status_code, Some(410));
        assert_eq!(attempt.error.as_deref(), Some("HTTP 410"));
    }

    #[tokio::test]
    async fn a_redirect_is_a_failure_and_not_followed() {
        let mut target = Server::start(response("200 OK", "", "")).await;
        let location = format!("location: {}\r\n", target.url());
        let attempt = answered("302 Found", &location, "").await;

        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, Some(302));
        assert_eq!(
            attempt.error.as_deref(),
            Some(format!("redirect to {} not followed", target.url()).as_str())
        );
        assert_eq!(target.connections(), 0);
        assert!(target.received.try_recv().is_err());
    }

    #[tokio::test]
    async fn retry_after_is_read_on_429_and_503_only() {
        let attempt = answered("429 Too Many Requests", "retry-after: 7\r\n", "").await;
        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, Some(429));
        assert_eq!(attempt.retry_after, Some(Duration::from_secs(7)));

        let attempt = answered("503 Service Unavailable", "retry-after: 120\r\n", "").await;
        assert_eq!(attempt.retry_after, Some(Duration::from_secs(120)));

        let attempt = answered("500 Internal Server Error", "retry-after: 7\r\n", "").await;
        assert_eq!(attempt.retry_after, None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[tokio::test]
    async fn a_huge_response_is_cut_at_the_limit_without_reading_the_rest() {
        // Only 1 MiB of the announced 5 MiB ever arrives: reading the whole body would hang
        // until the timeout, so a prompt, error-free return proves we stopped early.
        let server = Server::start(Reply::Large {
            declared: 5 * MIB,
            sent: MIB,
        })
        .await;
        let sender = WebhookSender::new(SenderConfig {
            timeout: Duration::from_secs(10),
            ..SenderConfig::local_development()
        });
        let started = Instant::now();
        let attempt = send(&sender, &server).await;

        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(attempt.outcome, AttemptOutcome::Success);
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.response_body.len(), 20 * 1024);
        assert!(attempt.response_body.bytes().all(|b| b == b'x'));
    }

    #[tokio::test]
    async fn a_huge_chunked_response_is_cut_at_the_limit() {
        let server = Server::start(Reply::Chunked { total: 5 * MIB }).await;
        let attempt = send(&local_sender(), &server).await;
        assert_eq!(attempt.outcome, AttemptOutcome::Success);
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.response_body.len(), 20 * 1024);
    }

    #[test]
    fn the_body_cap_holds_after_lossy_decoding() {
        // "é" is two bytes; cutting after the first leaves an invalid tail.
        let bytes = "aé".as_bytes();
        assert_eq!(lossy_capped(&bytes[..2], 2), "a");
        assert_eq!(lossy_capped(&[0xff, 0xff, 0xff], 3), "\u{fffd}");
        assert_eq!(lossy_capped("aé".as_bytes(), 3), "aé");
    }

    #[tokio::test]
    async fn a_slow_receiver_times_out() {
        let server = Server::start(Reply::Hang).await;
        let sender = WebhookSender::new(SenderConfig {
            timeout: Duration::from_millis(300),
            ..SenderConfig::local_development()
        });
        let started = Instant::now();
        let attempt = send(&sender, &server).await;

        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, None);
        assert_eq!(attempt.error.as_deref(), Some("timed out after 300 ms"));
        assert!(attempt.duration_ms >= 300, "{}", attempt.duration_ms);
        assert_eq!(server.connections(), 1);
    }

    #[test]
    fn timeouts_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(15)), "15 s");
        assert_eq!(human_duration(Duration::from_millis(300)), "300 ms");
        assert_eq!(SenderConfig::production().timeout, Duration::from_secs(15));
    }

    #[tokio::test]
    async fn production_refuses_a_loopback_url_before_connecting() {
        let server = Server::start(response("200 OK", "", "")).await;
        let sender = WebhookSender::new(SenderConfig::production());
        let attempt = send(&sender, &server).await;

        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, None);
        assert_eq!(
            attempt.error.as_deref(),
            Some("refusing to connect to 127.0.0.1: 127.0.0.1 is a loopback address")
        );
        assert_eq!(server.connections(), 0);
        // The headers are still reported, so a refused test-send shows what would have gone.
        assert_eq!(attempt.request_headers.len(), 5);

        let localhost = format!("http://localhost:{}/hook", server.addr.port());
        let attempt = sender.send(&localhost, "msg_1", 1, BODY, &[SECRET]).await;
        let error = attempt.error.unwrap();
        assert!(
            error.contains("localhost is a loopback host name"),
            "{error}"
        );
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn production_refuses_names_resolving_to_loopback_at_connect_time() {
        // Skips the URL check to exercise the resolver path a public name with a loopback DNS
        // record would take.
        let server = Server::start(response("200 OK", "", "")).await;
        let sender = WebhookSender::new(SenderConfig::production());
        let url = Url::parse(&format!("http://localhost:{}/hook", server.addr.port())).unwrap();
        let attempt = sender.attempt(Ok(url), "msg_1", 1, BODY, &[SECRET]).await;

        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        let error = attempt.error.unwrap();
        assert!(
            error.starts_with("refusing to connect to localhost: "),
            "{error}"
        );
        assert!(error.contains("is a loopback address"), "{error}");
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn metadata_is_refused_even_in_development() {
        let attempt = local_sender()
            .send(
                "http://169.254.169.254/latest/meta-data/",
                "msg_1",
                1,
                BODY,
                &[SECRET],
            )
            .await;
        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(
            attempt.error.as_deref(),
            Some(
                "refusing to connect to 169.254.169.254: 169.254.169.254 is a cloud metadata address"
            )
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_clear_connection_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/hook");
        let attempt = local_sender().send(&url, "msg_1", 1, BODY, &[SECRET]).await;

        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, None);
        let error = attempt.error.unwrap();
        assert!(
            error.starts_with(&format!("could not connect to 127.0.0.1:{port}: ")),
            "{error}"
        );
        assert!(
            error.to_lowercase().contains("connection refused"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_receiver_hanging_up_without_answering_is_a_failure() {
        let server = Server::start(Reply::Raw(String::new())).await;
        let attempt = send(&local_sender(), &server).await;
        assert_eq!(attempt.outcome, AttemptOutcome::Failure);
        assert_eq!(attempt.status_code, None);
        let error = attempt.error.unwrap();
        assert_eq!(
            error,
            "request failed: connection closed before message completed"
        );
    }

    #[tokio::test]
    async fn bad_input_is_a_failed_attempt_not_a_panic() {
        let sender = local_sender();
        for (url, id, secrets, expected) in [
            ("not a url", "msg_1", &[SECRET][..], "invalid URL"),
            (
                "ftp://example.com/",
                "msg_1",
                &[SECRET][..],
                "scheme \"ftp\"",
            ),
            (
                "http://127.0.0.1:9/",
                "msg\n1",
                &[SECRET][..],
                "invalid value for header webhook-id",
            ),
            (
                "http://127.0.0.1:9/",
                "msg_1",
                &["whsec_!!"][..],
                "no usable signing secret",
            ),
            (
                "http://127.0.0.1:9/",
                "msg_1",
                &[][..],
                "no usable signing secret",
            ),
        ] {
            let attempt = sender.send(url, id, 1, BODY, secrets).await;
            assert_eq!(attempt.outcome, AttemptOutcome::Failure, "{url}");
            let error = attempt.error.unwrap();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }
}
