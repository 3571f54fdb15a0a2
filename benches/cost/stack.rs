//! The AWS side of the bench: a moto server started here, and the stack's tables and queue
//! created on it from `template.yaml`'s own definitions, as the tests create theirs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    pub url: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server` on PATH, else in the repository's `.tools/venv/bin`.
fn moto_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .collect::<Vec<_>>()
    });
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/moto_server");
    on_path
        .chain([local])
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            eprintln!(
                "moto_server not found on PATH or in .tools/venv/bin; scripts/test.sh installs it \
                 (or `pip install 'moto[server]'` and put it on PATH)"
            );
            std::process::exit(2)
        })
}

impl Moto {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on {port} within 30 s");
    }

    pub async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            .load()
            .await
    }
}

pub fn template() -> &'static Value {
    static TEMPLATE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
    })
}

pub fn resource(name: &str) -> &'static Value {
    &template()["Resources"][name]["Properties"]
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("template.yaml: {field} missing"))
}

fn list<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value[field].as_sequence().map_or(&[], Vec::as_slice)
}

fn key_schema(value: &Value) -> Vec<KeySchemaElement> {
    list(value, "KeySchema")
        .iter()
        .map(|key| {
            KeySchemaElement::builder()
                .attribute_name(text(key, "AttributeName"))
                .key_type(KeyType::from(text(key, "KeyType")))
                .build()
                .unwrap()
        })
        .collect()
}

/// Creates table `name` as the template declares `resource` (keys, indexes, stream).
async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, resource_name: &str) {
    let table = resource(resource_name);
    let attributes = list(table, "AttributeDefinitions").iter().map(|attribute| {
        AttributeDefinition::builder()
            .attribute_name(text(attribute, "AttributeName"))
            .attribute_type(ScalarAttributeType::from(text(attribute, "AttributeType")))
            .build()
            .unwrap()
    });
    let indexes: Vec<_> = list(table, "GlobalSecondaryIndexes")
        .iter()
        .map(|index| {
            let projection = &index["Projection"];
            let kept: Vec<String> = list(projection, "NonKeyAttributes")
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            GlobalSecondaryIndex::builder()
                .index_name(text(index, "IndexName"))
                .set_key_schema(Some(key_schema(index)))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(text(projection, "ProjectionType")))
                        .set_non_key_attributes(Some(kept).filter(|k| !k.is_empty()))
                        .build(),
                )
                .build()
                .unwrap()
        })
        .collect();
    let stream = table["StreamSpecification"].as_mapping().map(|_| {
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::from(text(
                &table["StreamSpecification"],
                "StreamViewType",
            )))
            .build()
            .unwrap()
    });
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(text(table, "BillingMode")))
        .set_attribute_definitions(Some(attributes.collect()))
        .set_key_schema(Some(key_schema(table)))
        .set_global_secondary_indexes(Some(indexes).filter(|i| !i.is_empty()))
        .set_stream_specification(stream)
        .send()
        .await
        .unwrap();
}

/// One run's tables and deliveries queue, named apart from every other run's.
pub struct Stack {
    pub workspaces: String,
    pub events: String,
    pub subscriptions: String,
    pub deliveries: String,
    pub logs: String,
    pub queue_url: String,
    pub stream_arn: String,
}

impl Stack {
    pub async fn create(config: &aws_config::SdkConfig, name: &str) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let table = |suffix: &str| format!("{name}-{suffix}");
        for (suffix, resource) in [
            ("workspaces", "WorkspacesTable"),
            ("events", "EventsTable"),
            ("subscriptions", "SubscriptionsTable"),
            ("deliveries", "DeliveriesTable"),
            ("logs", "LogsTable"),
        ] {
            create_table(&dynamodb, &table(suffix), resource).await;
        }
        let dlq = sqs
            .create_queue()
            .queue_name(table("deliveries-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}"#);
        let queue_url = sqs
            .create_queue()
            .queue_name(table("deliveries"))
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let stream_arn = dynamodb
            .describe_table()
            .table_name(table("events"))
            .send()
            .await
            .unwrap()
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the events table has a stream");
        Self {
            workspaces: table("workspaces"),
            events: table("events"),
            subscriptions: table("subscriptions"),
            deliveries: table("deliveries"),
            logs: table("logs"),
            queue_url,
            stream_arn,
        }
    }
}

/// The delivery function's stream mapping as the template declares it.
pub struct Mapping {
    pub event_names: Vec<String>,
    pub batch_size: i32,
    pub max_retries: u32,
}

pub fn stream_mapping() -> Mapping {
    let mapping = &resource("DeliveryFunction")["Events"]["AcceptedEvents"]["Properties"];
    let pattern: serde_json::Value = serde_json::from_str(text(
        &list(&mapping["FilterCriteria"], "Filters")[0],
        "Pattern",
    ))
    .expect("the filter pattern is JSON");
    Mapping {
        event_names: pattern["eventName"]
            .as_array()
            .expect("filtered on eventName")
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect(),
        batch_size: mapping["BatchSize"].as_i64().expect("a batch size") as i32,
        max_retries: mapping["MaximumRetryAttempts"]
            .as_u64()
            .expect("bounded retries") as u32,
    }
}

/// The SQS mapping's batch size of the deliveries queue.
pub fn sqs_batch_size() -> i32 {
    resource("DeliveryFunction")["Events"]["DeliveryAttempts"]["Properties"]["BatchSize"]
        .as_i64()
        .expect("a batch size") as i32
}

/// A function's memory in MB: its own, else the template's global one.
pub fn memory_mb(function: &str) -> f64 {
    resource(function)["MemorySize"]
        .as_f64()
        .or_else(|| template()["Globals"]["Function"]["MemorySize"].as_f64())
        .expect("a MemorySize")
}
