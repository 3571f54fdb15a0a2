//! `hookline dlq list|redrive`: the messages a queue dead-lettered after too many receives,
//! shown, or sent back to their queue to be handled again. On any [`Queue`]: SQS on AWS, the
//! embedded queues of a local data directory.
//!
//! Every loop is bounded by `max`; listing holds the messages it saw invisible while it reads
//! on (so none is counted twice), then makes them visible again at once.

use std::collections::HashSet;
use std::time::Duration;

use hookline_shared::{Queue, QueueError, ReceivedMessage};
use serde_json::{json, Map, Value};

/// Messages one receive asks for: SQS's most.
const BATCH: u32 = 10;
/// Long enough for a listing or a redrive to finish with what it holds.
const HOLD: Duration = Duration::from_secs(60);
/// An empty receive waits this long before the queue is taken to be drained.
const POLL: Duration = Duration::from_secs(1);

/// One dead-lettered message as `list` prints it: its id, how often it was received, what kind
/// of work it is and the ids it names (never the whole body: it may be large).
pub fn describe(message: &ReceivedMessage) -> Value {
    let body: Option<Map<String, Value>> = serde_json::from_str(&message.body).ok();
    let kind = body
        .as_ref()
        .and_then(|b| b.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("unreadable");
    let ids: Map<String, Value> = body
        .iter()
        .flatten()
        .filter(|(name, value)| {
            (name.ends_with("_id") || name.as_str() == "attempt") && !value.is_null()
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    json!({
        "message_id": message.message_id,
        "receive_count": message.receive_count,
        "kind": kind,
        "ids": ids,
    })
}

/// Up to `max` dead-lettered messages, left in the queue.
pub async fn list<Q: Queue>(dead_letters: &Q, max: usize) -> Result<Vec<Value>, QueueError> {
    let mut held: Vec<ReceivedMessage> = Vec::new();
    let mut seen = HashSet::new();
    // Each round either holds more messages or ends; `max` rounds at the very most.
    for _ in 0..max {
        if held.len() >= max {
            break;
        }
        let batch = dead_letters.receive(BATCH, HOLD, POLL).await?;
        let fresh: Vec<_> = batch
            .into_iter()
            .filter(|m| seen.insert(m.message_id.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        held.extend(fresh);
    }
    let listed = held.iter().take(max).map(describe).collect();
    for message in &held {
        dead_letters
            .change_visibility(&message.receipt, Duration::ZERO)
            .await?;
    }
    Ok(listed)
}

/// Sends up to `max` dead-lettered messages back to `source`, each deleted from the dead
/// letters only once it is sent: a redrive cut short leaves a message in one queue or, at
/// worst, both (work is idempotent per delivery), never in neither. Returns how many moved.
pub async fn redrive<D: Queue, S: Queue>(
    dead_letters: &D,
    source: &S,
    max: usize,
) -> Result<usize, QueueError> {
    let mut moved = 0;
    for _ in 0..max {
        if moved >= max {
            break;
        }
        let want = BATCH.min(u32::try_from(max - moved).unwrap_or(BATCH));
        let batch = dead_letters.receive(want, HOLD, POLL).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            source.send(&message.body, Duration::ZERO).await?;
            dead_letters.delete(&message.receipt).await?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// The dead-letter queue of the SQS queue at `source_url`, read from its redrive policy.
pub async fn sqs_dead_letter_url(
    client: &aws_sdk_sqs::Client,
    source_url: &str,
) -> Result<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = client
        .get_queue_attributes()
        .queue_url(source_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read {source_url}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    let policy = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| format!("{source_url} has no redrive policy, so no dead-letter queue"))?;
    let policy: Value =
        serde_json::from_str(policy).map_err(|e| format!("unreadable redrive policy: {e}"))?;
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .ok_or("the redrive policy names no deadLetterTargetArn")?;
    // arn:aws:sqs:<region>:<account>:<name>
    let name = arn.rsplit(':').next().unwrap_or(arn);
    let found = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot find queue {name}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    found
        .queue_url
        .ok_or_else(|| format!("no URL for queue {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_described_by_its_kind_and_ids() {
        let body = r#"{"kind":"deliver","workspace_id":"ws_1","delivery_id":"msg_2","attempt":3,"not_before":5,"subscription_id":null}"#;
        let message = ReceivedMessage {
            message_id: "m1".into(),
            receipt: "r".into(),
            body: body.into(),
            receive_count: 5,
        };
        assert_eq!(
            describe(&message),
            json!({"message_id": "m1", "receive_count": 5, "kind": "deliver",
                "ids": {"workspace_id": "ws_1", "delivery_id": "msg_2", "attempt": 3}})
        );
        let garbled = ReceivedMessage {
            body: "not json".into(),
            ..message
        };
        assert_eq!(describe(&garbled)["kind"], "unreadable");
    }
}
