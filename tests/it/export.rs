//! Log export end to end: local mode as a process (files under the data dir, tokened links,
//! `.eml` files in the outbox), and the deployed adapters against moto (S3 multipart upload,
//! presigned link, SES v2). Each file's rows are checked against the logs API's answer for the
//! same filters.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use chrono::{SecondsFormat, Utc};
use exports::{Disposition, ExportWorker};
use hookline::admin::create_workspace;
use hookline::local::log_export::download_router;
use hookline_shared::adapters::embedded::StoredDownload;
use hookline_shared::adapters::memory::{MemoryExports, MemoryQueue, MemoryWorkspaces};
use hookline_shared::adapters::s3::S3Sink;
use hookline_shared::adapters::ses::SesMailer;
use hookline_shared::adapters::{DynamoExports, EmbeddedDb, SqsQueue};
use hookline_shared::delivery::DeliveryStatus;
use hookline_shared::log_view::LOG_FIELDS;
use hookline_shared::{ExportJobId, LogStore as _, Queue as _, SubscriptionId};
use serde_json::{json, Value};
use subscriptions::export::router as export_router;
use subscriptions::ExportsApi;

use crate::delivery::{email, ingest, subscribe};
use crate::ingest_api::answer;
use crate::local_mode::{client, Serving};
use crate::notify_api::{delivery_log, notify_app, Api};
use crate::receiver::{Behavior, Receiver};
use crate::support::{aws_config, create_table, moto_url, poll_until, unique, MotoStack};

/// A logs-API object as the CSV cells it exports to.
fn as_cells(log: &Value) -> BTreeMap<String, String> {
    LOG_FIELDS
        .iter()
        .map(|field| {
            let cell = match &log[*field] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (field.to_string(), cell)
        })
        .collect()
}

/// A CSV export's rows, keyed by field, after its header (which must be the logs API's fields).
fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    assert_eq!(reader.headers().unwrap(), LOG_FIELDS.as_slice());
    reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            LOG_FIELDS
                .iter()
                .zip(row.iter())
                .map(|(field, cell)| {
                    // The envelope is JSON text in the file; compared as the value it holds.
                    let cell = match *field {
                        "delivered_event_obj" => {
                            serde_json::from_str::<Value>(cell).unwrap().to_string()
                        }
                        _ => cell.to_owned(),
                    };
                    (field.to_string(), cell)
                })
                .collect()
        })
        .collect()
}

/// The file's rows equal the API's logs, in the API's order (newest first).
fn assert_rows_equal_api(rows: &[BTreeMap<String, String>], api: &Value) {
    let expected: Vec<BTreeMap<String, String>> = api["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(as_cells)
        .collect();
    assert_eq!(rows.len(), expected.len(), "row count");
    assert_eq!(rows, expected.as_slice());
}

/// The first `http…` link in `text` that contains `marker`, HTML entities undone.
fn link_in(text: &str, marker: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .find(|word| word.starts_with("http") && word.contains(marker))
        .map(|link| link.replace("&amp;", "&"))
}

/// Every `.eml` in the outbox, oldest first.
fn outbox(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("outbox")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, path)| std::fs::read(path).ok())
        .filter_map(|raw| decoded(&raw))
        .collect()
}

/// An `.eml` as a reader sees it: subject, text part and HTML part, decoded; `None` while the
/// file is still being written.
fn decoded(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let (text, html) = (message.body_text(0)?, message.body_html(0)?);
    html.contains("</html>").then(|| {
        format!(
            "Subject: {}\n\n{text}\n\n{html}",
            message.subject().unwrap_or_default()
        )
    })
}

/// Posts an export, waits for its job to finish and its email to arrive; the job's state and
/// the email.
async fn export_and_wait(api: &Api<'_>, data_dir: &Path, body: Value) -> (Value, String) {
    let before = outbox(data_dir).len();
    let (status, queued) = api
        .send("POST", "/workspaces/{ws}/logs/export", Some(body))
        .await;
    assert_eq!(status, 202, "{queued}");
    assert!(queued["message"]
        .as_str()
        .unwrap()
        .contains("ops@example.com"));
    let job = queued["job_id"].as_str().unwrap().to_owned();
    let path = format!("/workspaces/{{ws}}/logs/export/{job}");
    let state = poll_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || api.send("GET", &path, None),
        |(_, state)| state["status"] == "done" || state["status"] == "failed",
    )
    .await
    .1;
    assert_eq!(state["status"], "done", "{state}");
    let emails = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { outbox(data_dir) },
        |emails| emails.len() > before,
    )
    .await;
    assert_eq!(emails.len(), before + 1, "one email per export");
    (state, emails[before].clone())
}

async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// The local scenario: 30 deliveries, some failed; an export of the last hour answers
/// 202, an email with a link lands in the outbox within seconds, and the link downloads the
/// logs API's 30 rows under a header. Then the Traditional Chinese and the fallback template,
/// NDJSON, and links that open only their own file.
#[tokio::test]
async fn local_export_emails_a_link_to_the_logs_apis_rows() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    // One attempt per delivery within the test: the retry waits ten minutes.
    let serving = Serving::start_with(dir.path(), &[("HOOKLINE_RETRY_SCHEDULE", "600")]);
    let api = Api { serving: &serving };
    subscribe(
        &api,
        &receiver.endpoint("up", Behavior::Ok),
        &["emails.sent"],
    )
    .await;
    // Fewer failures than pause a subscription.
    let flaky = receiver.endpoint("flaky", Behavior::FailTimes(8));
    subscribe(&api, &flaky, &["emails.sent"]).await;
    for i in 0..15 {
        ingest(&serving, &email(&format!("export {i}"))).await;
    }
    let since =
        (Utc::now() - chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let logs_path = format!("/workspaces/{{ws}}/logs?start_date={since}&limit=0");
    let logs = poll_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || api.send("GET", &logs_path, None),
        |(_, page)| page["total"] == 30,
    )
    .await
    .1;
    assert_eq!(logs["total"], 30, "{logs}");

    let (state, eml) = export_and_wait(
        &api,
        dir.path(),
        json!({"email": "ops@example.com", "start_date": since}),
    )
    .await;
    assert_eq!(state["rows"], 30);
    assert!(
        eml.contains("Your Hookline delivery log export is ready"),
        "{eml}"
    );
    assert!(eml.contains("Hello,") && eml.contains("Rows: 30"), "{eml}");
    let link = link_in(&eml, "/exports/").expect("the email holds a link");
    assert_eq!(state["download_url"], link.as_str());
    assert!(state["expires_at"].is_string());
    let (status, file) = fetch(&link).await;
    assert_eq!(status, 200);
    let rows = csv_rows(&file);
    assert_eq!(rows.len(), 30);
    assert_rows_equal_api(&rows, &logs);
    assert_eq!(state["bytes"], file.len());

    // Traditional Chinese, the failed ones only.
    let (state, eml) = export_and_wait(
        &api,
        dir.path(),
        json!({"email": "ops@example.com", "start_date": since, "lang": "zh-TW",
            "delivery_status": "failed"}),
    )
    .await;
    assert!(eml.contains("您好") && eml.contains("筆數: 8"), "{eml}");
    assert!(!eml.contains("Hello,"));
    let failed_link = link_in(&eml, "/exports/").unwrap();
    let failed_logs = api
        .send("GET", &format!("{logs_path}&delivery_status=failed"), None)
        .await
        .1;
    assert_eq!(
        (state["rows"].clone(), failed_logs["total"].clone()),
        (json!(8), json!(8))
    );
    assert_rows_equal_api(&csv_rows(&fetch(&failed_link).await.1), &failed_logs);

    // An unknown language is English; NDJSON is the API's objects, one a line.
    let (_, eml) = export_and_wait(
        &api,
        dir.path(),
        json!({"email": "ops@example.com", "start_date": since, "lang": "tlh-KX",
            "format": "ndjson"}),
    )
    .await;
    assert!(eml.contains("Hello,"), "{eml}");
    let (_, lines) = fetch(&link_in(&eml, "/exports/").unwrap()).await;
    let objects: Vec<Value> = String::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        objects.as_slice(),
        logs["data"].as_array().unwrap().as_slice()
    );

    // Each link opens its own file only; a changed or made-up token opens none.
    assert_ne!(link, failed_link);
    assert_eq!(csv_rows(&fetch(&link).await.1).len(), 30);
    let (prefix, token) = link.rsplit_once('/').unwrap();
    let mut changed = token.to_owned();
    let last = changed.pop().unwrap();
    changed.push(if last == 'A' { 'B' } else { 'A' });
    for forged in [
        format!("{prefix}/{changed}"),
        format!("{prefix}/nothing-here"),
    ] {
        let (status, body) = fetch(&forged).await;
        assert_eq!(status, 404, "{forged}");
        assert!(String::from_utf8_lossy(&body).contains("not_found"));
    }
    serving.stop();
}

/// A link whose time is up opens nothing, like one never issued.
#[tokio::test]
async fn an_expired_download_link_is_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(&dir.path().join("hookline.db")).unwrap();
    let file = dir.path().join("file.csv");
    std::fs::write(&file, "id\n").unwrap();
    let stored = |expires_at: i64| StoredDownload {
        workspace_id: hookline_shared::WorkspaceId::generate(),
        job_id: ExportJobId::generate(),
        path: file.to_string_lossy().into_owned(),
        content_type: "text/csv".into(),
        expires_at,
    };
    let hash = |token: &str| blake3::hash(token.as_bytes()).to_hex().to_string();
    let now = Utc::now().timestamp();
    db.add_download(&hash("live"), &stored(now + 60))
        .await
        .unwrap();
    db.add_download(&hash("expired"), &stored(now - 1))
        .await
        .unwrap();
    let app = download_router(db);
    let get = |token: &'static str| {
        let app = app.clone();
        async move {
            let req = lambda_http::http::Request::get(format!("/exports/{token}"))
                .body(Body::empty())
                .unwrap();
            answer(&app, req).await.status().as_u16()
        }
    };
    assert_eq!(get("live").await, 200);
    assert_eq!(get("expired").await, 404);
    assert_eq!(get("unknown").await, 404);
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("/notify/api/v1{path}"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let response = answer(app, req).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (status, body)
}

/// The routes without a worker: every 4xx names its field, and a second export while the
/// first is queued is a 409 naming the workspace.
#[tokio::test]
async fn export_requests_are_validated_and_one_runs_per_workspace() {
    let workspaces = MemoryWorkspaces::default();
    let tenant = create_workspace(&workspaces, "acme").await.unwrap();
    let queue = MemoryQueue::default();
    let app = export_router(ExportsApi::new(
        workspaces,
        MemoryExports::default(),
        queue.clone(),
    ));
    let (ws, key) = (
        tenant.workspace.id.to_string(),
        tenant.api_key.expose().to_owned(),
    );
    let path = format!("/workspaces/{ws}/logs/export");

    let bad = json!({"email": "nobody", "start_date": "last week", "format": "xls",
        "delivery_status": "meh", "subscription_id": "sub_1"});
    let (status, answer) = call(&app, "POST", &path, &key, Some(bad)).await;
    assert_eq!(status, 400, "{answer}");
    let named: Vec<&String> = answer["fieldErrors"].as_object().unwrap().keys().collect();
    assert_eq!(
        named,
        [
            "delivery_status",
            "email",
            "format",
            "start_date",
            "subscription_id"
        ]
    );
    let (status, answer) = call(&app, "POST", &path, &key, Some(json!({}))).await;
    assert_eq!(
        (status, answer["fieldErrors"]["email"].is_array()),
        (400, true)
    );

    let (status, first) = call(
        &app,
        "POST",
        &path,
        &key,
        Some(json!({"email": "ops@example.com"})),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    let job = first["job_id"].as_str().unwrap();
    assert!(job.starts_with("exp_"));
    let (status, busy) = call(
        &app,
        "POST",
        &path,
        &key,
        Some(json!({"email": "ops@example.com"})),
    )
    .await;
    assert_eq!(status, 409, "{busy}");
    assert!(busy["fieldErrors"]["workspace_id"][0]
        .as_str()
        .unwrap()
        .contains(job));
    let queued = queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "only the accepted export is queued");

    let (status, state) = call(&app, "GET", &format!("{path}/{job}"), &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        state,
        json!({"job_id": job, "status": "queued", "rows": 0, "bytes": 0})
    );
    for unknown in [ExportJobId::generate().to_string(), "exp_nope".into()] {
        let (status, body) = call(&app, "GET", &format!("{path}/{unknown}"), &key, None).await;
        assert_eq!(status, 404, "{body}");
    }
}

/// The deployed path against moto: the job through DynamoDB and SQS, the file through an S3
/// multipart upload, the link through SES; the link in the email moto recorded downloads the
/// rows the logs API answers for the same filters.
#[tokio::test]
async fn moto_export_emails_a_presigned_link_to_the_logs_apis_rows() {
    let stack = MotoStack::create(5).await;
    let config = aws_config().await;
    let exports_table = unique("hl-exports");
    create_table(&stack.dynamodb, &exports_table, "ExportsTable").await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("hl-exports");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let ses = aws_sdk_sesv2::Client::new(&config);
    let sender = format!("{}@example.com", unique("exports"));
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    let queue_url = stack
        .sqs
        .create_queue()
        .queue_name(unique("hl-exports"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let exports_queue = SqsQueue::new(stack.sqs.clone(), &queue_url);

    let workspaces = stack.workspaces();
    let tenant = create_workspace(&workspaces, "acme").await.unwrap();
    let ws = tenant.workspace.id.clone();
    let key = tenant.api_key.expose().to_owned();
    let (a, b) = (SubscriptionId::generate(), SubscriptionId::generate());
    let logs = stack.logs();
    for i in 0..24 {
        let mut log = delivery_log(
            &ws,
            if i % 2 == 0 { &a } else { &b },
            "https://example.com/hook",
        );
        log.created_at = Utc::now() - chrono::Duration::seconds(i);
        if i % 3 == 0 {
            log.delivery_status = DeliveryStatus::Failed;
            log.status_code = Some(500);
            log.error = Some("HTTP 500".into());
        }
        log.delivered_event_obj = hookline_shared::RawJson::from_value(
            &json!({"id": format!("evt-{i}"), "data": {"n": i}}),
        );
        logs.append_log(&log).await.unwrap();
    }
    let app = notify_app(
        workspaces.clone(),
        stack.subscriptions(),
        stack.event_types(),
        logs.clone(),
        MemoryQueue::default(),
    )
    .merge(export_router(ExportsApi::new(
        workspaces,
        DynamoExports::new(stack.dynamodb.clone(), &exports_table),
        exports_queue.clone(),
    )));

    let (status, queued) = call(
        &app,
        "POST",
        &format!("/workspaces/{ws}/logs/export"),
        &key,
        Some(json!({"email": "ops@example.com", "delivery_status": "failed", "lang": "zh-TW"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let job = queued["job_id"].as_str().unwrap().to_owned();

    let worker = ExportWorker {
        jobs: DynamoExports::new(stack.dynamodb.clone(), &exports_table),
        logs: logs.clone(),
        sink: S3Sink::new(s3.clone(), &bucket),
        mailer: SesMailer::new(ses, &sender),
        lease: Duration::from_secs(60),
    };
    let messages = exports_queue
        .receive(10, Duration::from_secs(60), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        worker
            .process(&messages[0].message_id, &messages[0].body)
            .await,
        Disposition::Ack
    );

    let (_, state) = call(
        &app,
        "GET",
        &format!("/workspaces/{ws}/logs/export/{job}"),
        &key,
        None,
    )
    .await;
    assert_eq!(state["status"], "done", "{state}");
    assert_eq!(state["rows"], 8);

    let recorded = moto_data().await;
    let messages = recorded["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sent: Vec<&Value> = messages
        .iter()
        .filter(|m| m["source"] == sender.as_str())
        .collect();
    assert_eq!(sent.len(), 1, "one email: {recorded}");
    assert_eq!(sent[0]["subject"], "您的 Hookline 傳送紀錄匯出檔已準備好");
    let body = sent[0]["body"].as_str().unwrap();
    assert!(body.contains("您好"), "{body}");
    let link = link_in(body, &bucket).expect("the email holds the presigned link");
    assert!(link.contains("X-Amz-Signature="), "{link}");
    assert!(link.contains("X-Amz-Expires=86400"), "{link}");
    assert_eq!(state["download_url"], link.as_str());

    let (status, file) = fetch(&link).await;
    assert_eq!(status, 200);
    let (_, api) = call(
        &app,
        "GET",
        &format!("/workspaces/{ws}/logs?delivery_status=failed&limit=0"),
        &key,
        None,
    )
    .await;
    assert_eq!(api["total"], 8);
    assert_rows_equal_api(&csv_rows(&file), &api);
    let stored = s3
        .head_object()
        .bucket(&bucket)
        .key(format!("exports/{ws}/{job}.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.server_side_encryption,
        Some(aws_sdk_s3::types::ServerSideEncryption::Aes256)
    );

    // The job's message again (SQS delivers at least once): nothing is sent twice.
    assert_eq!(
        worker.process("again", &messages_body(&ws, &job)).await,
        Disposition::Ack
    );
    let recorded = moto_data().await;
    let again = recorded["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        again
            .iter()
            .filter(|m| m["source"] == sender.as_str())
            .count(),
        1
    );
}

/// What moto recorded. Its dump can fail while other tests change its state at the same
/// moment, so a failed read is tried again (a few times).
async fn moto_data() -> Value {
    let read = || async {
        let response = client()
            .get(format!("{}/moto-api/data.json", moto_url()))
            .send()
            .await
            .ok()?;
        response.json::<Value>().await.ok()
    };
    let data = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        read,
        Option::is_some,
    )
    .await;
    data.expect("moto's data.json reads")
}

fn messages_body(ws: &hookline_shared::WorkspaceId, job: &str) -> String {
    hookline_shared::export::ExportMessage {
        workspace_id: ws.clone(),
        job_id: ExportJobId::parse(job).unwrap(),
    }
    .to_body()
}

/// What every job store must do alike: one job holds its workspace until it finishes, a
/// replace only lands on the version it read, and another workspace's job is not there.
async fn export_job_store_contract<J: hookline_shared::export::ExportJobStore>(jobs: J) {
    use hookline_shared::export::{ExportJob, ExportRequest, JobClaim, Opened};
    let request = ExportRequest::parse(&json!({"email": "ops@example.com"})).unwrap();
    let (ws, other) = (
        hookline_shared::WorkspaceId::generate(),
        hookline_shared::WorkspaceId::generate(),
    );
    let now = Utc::now();
    let first = ExportJob::new(ws.clone(), request.clone(), now);
    assert_eq!(jobs.create_job(&first).await.unwrap(), Opened::Opened);
    let second = ExportJob::new(ws.clone(), request.clone(), now);
    assert_eq!(
        jobs.create_job(&second).await.unwrap(),
        Opened::Busy(first.id.clone())
    );
    assert_eq!(jobs.get_job(&ws, &second.id).await.unwrap(), None);
    let elsewhere = ExportJob::new(other.clone(), request.clone(), now);
    assert_eq!(jobs.create_job(&elsewhere).await.unwrap(), Opened::Opened);
    assert_eq!(
        jobs.get_job(&ws, &first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(jobs.get_job(&other, &first.id).await.unwrap(), None);

    let JobClaim::Claimed(running) = first.claim(now, Duration::from_secs(60)) else {
        panic!("a queued job is claimable")
    };
    assert!(jobs.replace_job(&first, &running).await.unwrap());
    assert!(
        !jobs.replace_job(&first, &running).await.unwrap(),
        "a replace at a stale version does not land"
    );
    assert_eq!(
        jobs.create_job(&second).await.unwrap(),
        Opened::Busy(first.id.clone()),
        "a running job still holds its workspace"
    );
    let done = running.done(3, 30, "https://x".into(), now);
    assert!(jobs.replace_job(&running, &done).await.unwrap());
    assert_eq!(jobs.get_job(&ws, &first.id).await.unwrap(), Some(done));
    assert_eq!(
        jobs.create_job(&second).await.unwrap(),
        Opened::Opened,
        "a finished job lets go of its workspace"
    );
}

crate::backends::both_backends!(export_job_store_contract(exports));

#[tokio::test]
async fn memory_export_job_store_keeps_the_contract() {
    export_job_store_contract(MemoryExports::default()).await;
}

/// A sink that keeps only the sizes of the parts it is sent: what a million-row export's
/// memory is measured with, the worker's own buffers being all that is held.
#[derive(Clone, Default)]
struct CountingSink {
    parts: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

struct CountingUpload(CountingSink);

impl hookline_shared::export::ExportSink for CountingSink {
    type Upload = CountingUpload;

    async fn start(
        &self,
        _: &hookline_shared::export::ExportJob,
    ) -> Result<CountingUpload, hookline_shared::export::SinkError> {
        Ok(CountingUpload(self.clone()))
    }
}

impl hookline_shared::export::ExportUpload for CountingUpload {
    async fn write_part(
        &mut self,
        part: Vec<u8>,
    ) -> Result<(), hookline_shared::export::SinkError> {
        self.0.parts.lock().unwrap().push(part.len());
        Ok(())
    }

    async fn finish(
        self,
    ) -> Result<hookline_shared::export::Download, hookline_shared::export::SinkError> {
        Ok(hookline_shared::export::Download {
            url: "https://files.example/export".into(),
            expires_at: Utc::now(),
        })
    }

    async fn abort(self) {}
}

#[derive(Clone, Default)]
struct RecordingMailer(std::sync::Arc<std::sync::Mutex<Vec<hookline_shared::export::ExportEmail>>>);

impl hookline_shared::export::Mailer for RecordingMailer {
    async fn send(
        &self,
        email: &hookline_shared::export::ExportEmail,
    ) -> Result<(), hookline_shared::export::MailError> {
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

/// This process's peak resident set since the last reset, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A million generated logs in the embedded store exported by the worker: every row written,
/// in parts of at least S3's minimum, and the worker's peak memory under 64 MB. Run alone:
/// `cargo test --test it -- --ignored --nocapture a_million_row_export`.
#[tokio::test]
#[ignore = "generates a million logs; run alone to measure the worker's memory"]
async fn a_million_row_export_keeps_the_workers_memory_flat() {
    use futures_util::stream::{self, StreamExt as _};
    use hookline_shared::export::ports::MIN_PART_BYTES;
    use hookline_shared::export::{ExportJob, ExportJobStore as _, ExportRequest};
    const ROWS: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(&dir.path().join("hookline.db")).unwrap();
    let ws = hookline_shared::WorkspaceId::generate();
    let subscription = SubscriptionId::generate();
    let start = Utc::now() - chrono::Duration::hours(2);
    stream::iter(0..ROWS)
        .for_each_concurrent(256, |i| {
            let db = db.clone();
            let (ws, subscription) = (ws.clone(), subscription.clone());
            async move {
                let mut log = delivery_log(&ws, &subscription, "https://example.com/hook");
                log.created_at = start + chrono::Duration::milliseconds(i as i64 * 5);
                if i % 4 == 0 {
                    log.delivery_status = DeliveryStatus::Failed;
                }
                db.append_log(&log).await.unwrap();
            }
        })
        .await;
    let request = ExportRequest::parse(&json!({"email": "ops@example.com"})).unwrap();
    let job = ExportJob::new(ws.clone(), request, Utc::now());
    db.create_job(&job).await.unwrap();
    let sink = CountingSink::default();
    let mailer = RecordingMailer::default();
    let worker = ExportWorker {
        jobs: db.clone(),
        logs: db.clone(),
        sink: sink.clone(),
        mailer: mailer.clone(),
        lease: Duration::from_secs(60),
    };
    // Generating the logs is not the worker's memory: measure from here.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    let handled = worker.run(&ws, &job.id).await.unwrap();
    let peak = peak_rss_kib();
    let parts = sink.parts.lock().unwrap().clone();
    println!(
        "million-row export: {handled:?} in {:?}; {} parts; peak RSS {} MiB (at start {} MiB)",
        started.elapsed(),
        parts.len(),
        peak / 1024,
        before / 1024
    );
    assert_eq!(
        handled,
        exports::Handled::Done {
            rows: ROWS as u64,
            bytes: parts.iter().map(|p| *p as u64).sum()
        }
    );
    let (last, full) = parts.split_last().unwrap();
    assert!(full.iter().all(|p| *p >= MIN_PART_BYTES), "{parts:?}");
    assert!(*last > 0);
    assert_eq!(mailer.0.lock().unwrap().len(), 1);
    assert!(peak < 64 * 1024, "peak RSS {} MiB", peak / 1024);
}
