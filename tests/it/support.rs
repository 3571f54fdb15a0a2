//! Test plumbing: moto connection, per-test tables and queues, and both adapter stacks.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::QueueAttributeName;
use hookline_shared::adapters::dynamodb::{
    LOGS_BY_ID_INDEX, LOGS_BY_SUBSCRIPTION_INDEX, PARKED_INDEX,
};
use hookline_shared::adapters::embedded::Redrive;
use hookline_shared::adapters::memory::{
    MemoryConnections, MemoryDeliveries, MemoryEventTypes, MemoryEvents, MemoryLogs, MemoryQueue,
    MemorySubscriptions, MemoryWorkspaces,
};
use hookline_shared::adapters::{
    DynamoConnections, DynamoDeliveries, DynamoEventTypes, DynamoEvents, DynamoExports, DynamoLogs,
    DynamoSubscriptions, DynamoWorkspaces, EmbeddedDb, EmbeddedEvents, EmbeddedQueue, SqsQueue,
};
use hookline_shared::{EventId, Queue, QueueMessage};

/// Set by `scripts/test.sh`, which starts moto on a free loopback port.
pub const MOTO_URL_VAR: &str = "HOOKLINE_TEST_MOTO_URL";

pub fn moto_url() -> String {
    std::env::var(MOTO_URL_VAR).unwrap_or_else(|_| {
        panic!("{MOTO_URL_VAR} is not set: run the suite with scripts/test.sh, which starts a moto server")
    })
}

/// AWS config pointed at moto with static test credentials.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_loader(&moto_url()).load().await
}

/// An AWS config loader for `endpoint` (moto, or something in front of it), with static test
/// credentials.
pub fn aws_loader(endpoint: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
}

/// A unique prefix so parallel tests never share a table or queue.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The stack's resources created on moto exactly as `template.yaml` declares them.
pub struct MotoStack {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub workspaces_table: String,
    pub events_table: String,
    pub subscriptions_table: String,
    pub deliveries_table: String,
    pub logs_table: String,
    pub exports_table: String,
    pub queue_url: String,
    pub dlq_url: String,
}

impl MotoStack {
    pub async fn create(max_receives: u32) -> Self {
        let config = aws_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let streams = aws_sdk_dynamodbstreams::Client::new(&config);
        let name = unique("hl");
        let workspaces_table = format!("{name}-workspaces");
        let events_table = format!("{name}-events");
        let subscriptions_table = format!("{name}-subscriptions");
        create_table(&dynamodb, &workspaces_table, "WorkspacesTable").await;
        create_table(&dynamodb, &events_table, "EventsTable").await;
        create_table(&dynamodb, &subscriptions_table, "SubscriptionsTable").await;
        let deliveries_table = format!("{name}-deliveries");
        let logs_table = format!("{name}-logs");
        create_table(&dynamodb, &deliveries_table, "DeliveriesTable").await;
        create_table(&dynamodb, &logs_table, "LogsTable").await;
        let exports_table = format!("{name}-exports");
        create_table(&dynamodb, &exports_table, "ExportsTable").await;
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-events-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let redrive =
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-events"))
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Self {
            dynamodb,
            streams,
            sqs,
            workspaces_table,
            events_table,
            subscriptions_table,
            deliveries_table,
            logs_table,
            exports_table,
            queue_url,
            dlq_url,
        }
    }

    pub fn workspaces(&self) -> DynamoWorkspaces {
        DynamoWorkspaces::new(self.dynamodb.clone(), &self.workspaces_table)
    }

    pub fn events(&self) -> DynamoEvents {
        DynamoEvents::new(self.dynamodb.clone(), &self.events_table)
    }

    pub fn subscriptions(&self) -> DynamoSubscriptions {
        DynamoSubscriptions::new(self.dynamodb.clone(), &self.subscriptions_table)
    }

    /// Custom event types share the subscriptions table, as the stack wires them.
    pub fn event_types(&self) -> DynamoEventTypes {
        DynamoEventTypes::new(self.dynamodb.clone(), &self.subscriptions_table)
    }

    /// Connections live in the subscriptions table, as deployed.
    pub fn connections(&self) -> DynamoConnections {
        DynamoConnections::new(self.dynamodb.clone(), &self.subscriptions_table)
    }

    pub fn deliveries(&self) -> DynamoDeliveries {
        let retention = std::time::Duration::from_secs(30 * 86_400);
        DynamoDeliveries::new(self.dynamodb.clone(), &self.deliveries_table, retention)
    }

    pub fn logs(&self) -> DynamoLogs {
        DynamoLogs::new(self.dynamodb.clone(), &self.logs_table)
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), &self.queue_url)
    }

    pub fn exports(&self) -> DynamoExports {
        DynamoExports::new(self.dynamodb.clone(), &self.exports_table)
    }

    /// Every message visible on the events queue now (waiting up to a second for the first).
    pub async fn queued_messages(&self) -> Vec<hookline_shared::ReceivedMessage> {
        use hookline_shared::Queue as _;
        let visibility = std::time::Duration::from_secs(30);
        self.queue()
            .receive(10, visibility, std::time::Duration::from_secs(1))
            .await
            .unwrap()
    }

    pub fn dead_letters(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), &self.dlq_url)
    }

    /// The event source mapping of the delivery function over the events table's stream,
    /// reading it from its first record, filtered as the template filters it.
    pub async fn stream_poller(&self) -> delivery::stream_poller::StreamPoller {
        let table = self
            .dynamodb
            .describe_table()
            .table_name(&self.events_table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let arn = table
            .latest_stream_arn
            .expect("the events table has a stream");
        let names = stream_filter_event_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        delivery::stream_poller::StreamPoller::open(
            self.streams.clone(),
            &arn,
            &names,
            stream_mapping()["BatchSize"]
                .as_i64()
                .expect("a batch size") as i32,
            stream_max_retries(),
        )
        .await
        .unwrap()
    }

    /// The events table's stream, read as the fan-out's mapping passes it.
    pub fn outbox(&self) -> StreamOutbox {
        StreamOutbox {
            dynamodb: self.dynamodb.clone(),
            streams: self.streams.clone(),
            table: self.events_table.clone(),
        }
    }
}

/// Where a stack's event store hands accepted events on to their fan-out.
pub(crate) trait Outbox {
    /// The ids of the events handed on so far, oldest first (a queue's are received, so each
    /// is seen once).
    async fn fanned_out(&self) -> Vec<EventId>;
}

/// The events table's stream.
pub struct StreamOutbox {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
}

impl Outbox for StreamOutbox {
    async fn fanned_out(&self) -> Vec<EventId> {
        let table = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let arn = table.latest_stream_arn.unwrap();
        let names = stream_filter_event_names();
        let stream = self
            .streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap();
        let mut found = Vec::new();
        for shard in stream.shards() {
            let mut iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            // Until a read comes back empty; bounded, a test's shard being small.
            for _ in 0..100 {
                let Some(at) = iterator.take() else { break };
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(at)
                    .send()
                    .await
                    .unwrap();
                if page.records().is_empty() {
                    break;
                }
                for record in page.records() {
                    let name = record.event_name().unwrap().as_str();
                    if names.iter().any(|n| n == name) {
                        let image = record.dynamodb().unwrap().new_image().unwrap();
                        let id = image["event_id"].as_s().unwrap().clone();
                        found.push(EventId::try_from(id).unwrap());
                    }
                }
                iterator = page.next_shard_iterator;
            }
        }
        found
    }
}

/// The event ids of the fan-out messages visible on `queue` now, received.
async fn accepted_on<Q: Queue>(queue: &Q) -> Vec<EventId> {
    let mut found = Vec::new();
    // Bounded: a test's queue holds a handful.
    for _ in 0..100 {
        let batch = queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            if let QueueMessage::EventAccepted { event_id, .. } =
                QueueMessage::from_body(&message.body).unwrap()
            {
                found.push(event_id);
            }
        }
    }
    found
}

impl Outbox for EmbeddedQueue {
    async fn fanned_out(&self) -> Vec<EventId> {
        accepted_on(self).await
    }
}

impl Outbox for MemoryQueue {
    async fn fanned_out(&self) -> Vec<EventId> {
        accepted_on(self).await
    }
}

/// The delivery function's mapping of the events table's stream, as the template declares it.
fn stream_mapping() -> &'static serde_yaml_ng::Value {
    &properties("DeliveryFunction")["Events"]["AcceptedEvents"]["Properties"]
}

/// The `eventName`s the template's filter lets through to the fan-out.
pub fn stream_filter_event_names() -> Vec<String> {
    let filters = list(&stream_mapping()["FilterCriteria"], "Filters");
    assert_eq!(filters.len(), 1, "one filter on the stream mapping");
    let pattern: serde_json::Value = serde_json::from_str(text(&filters[0], "Pattern")).unwrap();
    let names = pattern["eventName"]
        .as_array()
        .expect("the filter is on eventName");
    assert_eq!(
        pattern.as_object().unwrap().len(),
        1,
        "{pattern}: eventName alone"
    );
    names
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

fn stream_max_retries() -> u32 {
    stream_mapping()["MaximumRetryAttempts"]
        .as_u64()
        .expect("bounded retries") as u32
}

/// `template.yaml`, parsed once. Its CloudFormation short tags (`!Ref`, `!GetAtt`, `!Sub`)
/// stay tagged values; the table definitions read here use none.
fn template() -> &'static serde_yaml_ng::Value {
    static TEMPLATE: OnceLock<serde_yaml_ng::Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
    })
}

/// The `Properties` of one of the template's resources.
fn properties(resource: &str) -> &'static serde_yaml_ng::Value {
    &template()["Resources"][resource]["Properties"]
}

fn text<'a>(value: &'a serde_yaml_ng::Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("template.yaml: {field} missing in {value:?}"))
}

fn list<'a>(value: &'a serde_yaml_ng::Value, field: &str) -> &'a [serde_yaml_ng::Value] {
    value[field].as_sequence().map_or(&[], Vec::as_slice)
}

fn key_schema(value: &serde_yaml_ng::Value) -> Vec<KeySchemaElement> {
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

/// Creates table `name` as the template declares `resource`: CloudFormation's table
/// properties are CreateTable's own shapes, so attributes, keys and indexes carry over as
/// they are, and a test table can never drift from the deployed one.
pub(crate) async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, resource: &str) {
    let table = properties(resource);
    let attributes = list(table, "AttributeDefinitions").iter().map(|attribute| {
        AttributeDefinition::builder()
            .attribute_name(text(attribute, "AttributeName"))
            .attribute_type(ScalarAttributeType::from(text(attribute, "AttributeType")))
            .build()
            .unwrap()
    });
    let indexes = list(table, "GlobalSecondaryIndexes").iter().map(|index| {
        let projection = &index["Projection"];
        let kept = list(projection, "NonKeyAttributes").iter();
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(text(projection, "ProjectionType")))
            .set_non_key_attributes(
                Some(
                    kept.filter_map(|a| a.as_str().map(str::to_owned))
                        .collect::<Vec<_>>(),
                )
                .filter(|kept| !kept.is_empty()),
            )
            .build();
        GlobalSecondaryIndex::builder()
            .index_name(text(index, "IndexName"))
            .set_key_schema(Some(key_schema(index)))
            .projection(projection)
            .build()
            .unwrap()
    });
    let indexes: Vec<_> = indexes.collect();
    let stream = table["StreamSpecification"].as_mapping().map(|_| {
        let view = text(&table["StreamSpecification"], "StreamViewType");
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::from(view))
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

/// The indexes the adapters query are the ones the template declares.
#[test]
fn template_declares_the_indexes_the_adapters_query() {
    let names = |resource: &str| -> Vec<&str> {
        let indexes = list(properties(resource), "GlobalSecondaryIndexes");
        indexes.iter().map(|i| text(i, "IndexName")).collect()
    };
    assert_eq!(names("DeliveriesTable"), [PARKED_INDEX]);
    assert_eq!(
        names("LogsTable"),
        [LOGS_BY_SUBSCRIPTION_INDEX, LOGS_BY_ID_INDEX]
    );
}

/// The stream the fan-out reads carries new images, and its mapping passes exactly what the
/// handler fans out: every write of an event item, never TTL's removals.
#[test]
fn template_streams_every_acceptance_to_the_fan_out() {
    let stream = &properties("EventsTable")["StreamSpecification"];
    assert_eq!(text(stream, "StreamViewType"), "NEW_IMAGE");
    let names = stream_filter_event_names();
    assert_eq!(names, ["INSERT", "MODIFY"]);
    let record = |name: &str| -> aws_lambda_events::event::dynamodb::EventRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": "1", "eventName": name, "awsRegion": "us-east-1",
            "dynamodb": {"SizeBytes": 1}
        }))
        .unwrap()
    };
    for name in ["INSERT", "MODIFY", "REMOVE"] {
        assert_eq!(
            delivery::is_acceptance(&record(name)),
            names.iter().any(|n| n == name),
            "{name}"
        );
    }
    let mapping = stream_mapping();
    assert_eq!(
        list(mapping, "FunctionResponseTypes")[0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert_eq!(mapping["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(stream_max_retries() <= 10);
    let destination = &mapping["DestinationConfig"]["OnFailure"]["Destination"];
    assert!(
        matches!(destination, serde_yaml_ng::Value::Tagged(_)),
        "{destination:?}"
    );
}

/// The embedded equivalent, in a temporary directory.
pub struct EmbeddedStack {
    pub db: EmbeddedDb,
    /// The events, their fan-out written to `queue` in the same transaction.
    pub events: EmbeddedEvents,
    pub queue: EmbeddedQueue,
    pub dead_letters: EmbeddedQueue,
    _dir: tempfile::TempDir,
}

impl EmbeddedStack {
    pub fn create(max_receives: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDb::open(&dir.path().join("hookline.db")).unwrap();
        let redrive = Redrive {
            dead_letter_queue: "events-dlq".into(),
            max_receives,
        };
        let queue = EmbeddedQueue::new(db.clone(), "events", Some(redrive));
        Self {
            events: EmbeddedEvents::new(queue.clone()),
            queue,
            dead_letters: EmbeddedQueue::new(db.clone(), "events-dlq", None),
            db,
            _dir: dir,
        }
    }

    // The ports by name, as the other stacks have them; one database holds them all.
    pub fn workspaces(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn events(&self) -> EmbeddedEvents {
        self.events.clone()
    }

    pub fn subscriptions(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn event_types(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn connections(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn deliveries(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn logs(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn queue(&self) -> EmbeddedQueue {
        self.queue.clone()
    }

    pub fn exports(&self) -> EmbeddedDb {
        self.db.clone()
    }

    pub fn dead_letters(&self) -> EmbeddedQueue {
        self.dead_letters.clone()
    }

    /// The events queue, where stored events' fan-out is written.
    pub fn outbox(&self) -> EmbeddedQueue {
        self.queue.clone()
    }
}

/// The in-memory adapters, with an events queue that dead-letters after `max_receives`.
#[derive(Default)]
pub struct MemoryStack {
    workspaces: MemoryWorkspaces,
    events: MemoryEvents,
    subscriptions: MemorySubscriptions,
    event_types: MemoryEventTypes,
    connections: MemoryConnections,
    deliveries: MemoryDeliveries,
    logs: MemoryLogs,
    queue: MemoryQueue,
    dead_letters: MemoryQueue,
}

impl MemoryStack {
    pub fn create(max_receives: u32) -> Self {
        let dead_letters = MemoryQueue::default();
        let queue = MemoryQueue::default().with_redrive(dead_letters.clone(), max_receives);
        Self {
            events: MemoryEvents::default().with_outbox(queue.clone()),
            queue,
            dead_letters,
            ..Self::default()
        }
    }

    pub fn workspaces(&self) -> MemoryWorkspaces {
        self.workspaces.clone()
    }

    pub fn events(&self) -> MemoryEvents {
        self.events.clone()
    }

    pub fn subscriptions(&self) -> MemorySubscriptions {
        self.subscriptions.clone()
    }

    pub fn event_types(&self) -> MemoryEventTypes {
        self.event_types.clone()
    }

    pub fn connections(&self) -> MemoryConnections {
        self.connections.clone()
    }

    pub fn deliveries(&self) -> MemoryDeliveries {
        self.deliveries.clone()
    }

    pub fn logs(&self) -> MemoryLogs {
        self.logs.clone()
    }

    pub fn queue(&self) -> MemoryQueue {
        self.queue.clone()
    }

    pub fn dead_letters(&self) -> MemoryQueue {
        self.dead_letters.clone()
    }

    pub fn outbox(&self) -> MemoryQueue {
        self.queue.clone()
    }
}

/// A sender for tests: loopback receivers allowed, the production timeout and limits. Test
/// receivers are IP literals, so its guard resolves no name at all and never asks DNS.
pub fn loopback_sender() -> hookline_shared::webhook::WebhookSender {
    use hookline_shared::webhook::{Lookup, SenderConfig, WebhookSender};
    WebhookSender::with_lookup(SenderConfig::local_development(), Lookup::hosts([]))
}

/// Calls `fetch` every `interval` until `done` holds for what it returns or `limit` has passed,
/// and returns the last result either way (the caller's assertion says what was wanted).
pub async fn poll_until<T, Fut>(
    limit: Duration,
    interval: Duration,
    mut fetch: impl FnMut() -> Fut,
    done: impl Fn(&T) -> bool,
) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + limit;
    loop {
        let got = fetch().await;
        if done(&got) || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(interval).await;
    }
}
