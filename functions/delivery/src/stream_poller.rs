//! Lambda's event source mapping over a DynamoDB stream, played against a DynamoDB Streams
//! API (moto, in the tests and the cost bench): every shard read from its start, records
//! kept only if the mapping's filter would pass them, each read's records handed to the
//! delivery function's own entry point as the JSON event Lambda sends, and a batch retried
//! from its first failed record (`ReportBatchItemFailures`) a bounded number of times before
//! its records go to the on-failure destination ([`StreamPoller::failed`]).

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

use crate::{handle_invocation, Ports, Worker};

/// Reads a stream as the event source mapping would; owns no task, so it runs only while its
/// caller polls it.
pub struct StreamPoller {
    client: Client,
    stream_arn: String,
    /// The `eventName`s the mapping's filter lets through.
    event_names: Vec<String>,
    /// Records per invocation at most (the mapping's `BatchSize`).
    batch_size: i32,
    max_retries: u32,
    /// The next iterator of each open shard.
    iterators: Vec<String>,
    /// A batch the function failed, from its first failed record on, and its retries so far.
    retry: Option<(Vec<Value>, u32)>,
    /// Records that used up their retries.
    pub failed: Vec<Value>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Records handed to the function (a retried one counts again).
    pub handled: usize,
    /// Records the function answered as failed.
    pub failures: usize,
    /// Whether the records were a failed batch's, handed again.
    pub retry: bool,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

impl StreamPoller {
    /// Opens every shard of `stream_arn` at its oldest record.
    pub async fn open(
        client: Client,
        stream_arn: &str,
        event_names: &[&str],
        batch_size: i32,
        max_retries: u32,
    ) -> Result<Self, Error> {
        let description = client
            .describe_stream()
            .stream_arn(stream_arn)
            .send()
            .await?
            .stream_description
            .ok_or("stream without a description")?;
        let mut iterators = Vec::new();
        for shard in description.shards() {
            let iterator = client
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(shard.shard_id().unwrap_or_default())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await?
                .shard_iterator;
            iterators.extend(iterator);
        }
        Ok(Self {
            client,
            stream_arn: stream_arn.to_owned(),
            event_names: event_names.iter().map(|n| (*n).to_owned()).collect(),
            batch_size,
            max_retries,
            iterators,
            retry: None,
            failed: Vec::new(),
        })
    }

    /// One round: a failed batch retried first, else one read of every shard (at most a
    /// batch's worth each), its records that pass the filter invoked as one batch (if any).
    pub async fn poll<P: Ports>(&mut self, worker: &Worker<P>) -> Result<Polled, Error> {
        let (records, tries, retry) = match self.retry.take() {
            Some((records, tries)) => (records, tries + 1, true),
            None => (self.read().await?, 0, false),
        };
        if records.is_empty() {
            return Ok(Polled::default());
        }
        let handled = records.len();
        let event = LambdaEvent::new(json!({ "Records": records }), Context::default());
        let answer = handle_invocation(worker, event).await?;
        let failed: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let failures = failed.len();
        // As the mapping does: the batch again from its first failed record.
        let first = records
            .iter()
            .position(|r| failed.contains(&r["dynamodb"]["SequenceNumber"].as_str().unwrap_or("")));
        if let Some(first) = first {
            let rest = records[first..].to_vec();
            if tries < self.max_retries {
                self.retry = Some((rest, tries));
            } else {
                self.failed.extend(rest);
            }
        }
        Ok(Polled {
            handled,
            failures,
            retry,
        })
    }

    /// The records since the last read, across shards, as Lambda's event records.
    async fn read(&mut self) -> Result<Vec<Value>, Error> {
        let mut records = Vec::new();
        let mut open = Vec::new();
        for iterator in std::mem::take(&mut self.iterators) {
            let page = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(self.batch_size)
                .send()
                .await?;
            for record in page.records() {
                if self.passes(record) {
                    records.push(self.lambda_record(record));
                }
            }
            // A shard that is closed and read to its end has no next iterator.
            open.extend(page.next_shard_iterator);
        }
        self.iterators = open;
        Ok(records)
    }

    fn passes(&self, record: &Record) -> bool {
        let name = record.event_name().map(|n| n.as_str()).unwrap_or_default();
        self.event_names.iter().any(|allowed| allowed == name)
    }

    /// A record in the JSON shape Lambda's DynamoDB event source gives the function.
    fn lambda_record(&self, record: &Record) -> Value {
        let change = record.dynamodb();
        let item = |image: Option<&std::collections::HashMap<String, _>>| {
            let item: serde_dynamo::Item = image.cloned().unwrap_or_default().into();
            serde_json::to_value(item).expect("items serialize")
        };
        json!({
            "eventID": record.event_id(),
            "eventName": record.event_name().map(|n| n.as_str()),
            "eventVersion": record.event_version(),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.aws_region(),
            "eventSourceARN": self.stream_arn,
            "dynamodb": {
                "ApproximateCreationDateTime": change
                    .and_then(|c| c.approximate_creation_date_time())
                    .map(|t| t.secs()),
                "Keys": item(change.and_then(|c| c.keys.as_ref())),
                "NewImage": item(change.and_then(|c| c.new_image.as_ref())),
                "SequenceNumber": change.and_then(|c| c.sequence_number()),
                "SizeBytes": change.and_then(|c| c.size_bytes()).unwrap_or_default(),
                "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|v| v.as_str()),
            }
        })
    }
}
