//! An export's file, written row by row into a buffer the worker drains part by part, so a
//! file of any size never sits in memory whole.

use crate::delivery::DeliveryLog;
use crate::export::Format;
use crate::log_view::{log_cells, log_json, LOG_FIELDS};

/// Rows of one export, in its format.
pub struct RowWriter {
    out: Out,
    /// Bytes handed out so far.
    drained: u64,
    rows: u64,
}

/// The buffer rows are written into: CSV through the `csv` crate's quoting, NDJSON directly.
enum Out {
    // Boxed: the writer's state is large and there is one `Out` per export.
    Csv(Box<csv::Writer<Vec<u8>>>),
    Ndjson(Vec<u8>),
}

impl RowWriter {
    /// A writer whose first bytes are the CSV header (NDJSON has none).
    pub fn new(format: Format) -> Self {
        let out = match format {
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(Vec::new());
                csv.write_record(LOG_FIELDS)
                    .expect("writing to memory cannot fail");
                Out::Csv(Box::new(csv))
            }
            Format::Ndjson => Out::Ndjson(Vec::new()),
        };
        Self {
            out,
            drained: 0,
            rows: 0,
        }
    }

    pub fn write(&mut self, log: &DeliveryLog) {
        match &mut self.out {
            Out::Csv(csv) => csv
                .write_record(log_cells(log).iter().map(|c| c.as_bytes()))
                .expect("writing to memory cannot fail"),
            Out::Ndjson(buffer) => {
                serde_json::to_writer(&mut *buffer, &log_json(log)).expect("logs serialize");
                buffer.push(b'\n');
            }
        }
        self.rows += 1;
    }

    /// Bytes written and not yet drained.
    pub fn pending(&mut self) -> usize {
        match &mut self.out {
            Out::Csv(csv) => {
                csv.flush().expect("flushing to memory cannot fail");
                csv.get_ref().len()
            }
            Out::Ndjson(buffer) => buffer.len(),
        }
    }

    /// Takes the bytes written so far.
    pub fn drain(&mut self) -> Vec<u8> {
        let part = match &mut self.out {
            Out::Csv(csv) => {
                let full = std::mem::replace(&mut **csv, csv::Writer::from_writer(Vec::new()));
                full.into_inner().expect("flushing to memory cannot fail")
            }
            Out::Ndjson(buffer) => std::mem::take(buffer),
        };
        self.drained += part.len() as u64;
        part
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Every byte written, drained or not.
    pub fn bytes(&mut self) -> u64 {
        self.drained + self.pending() as u64
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::*;
    use crate::delivery::{DeliveryId, DeliveryStatus};
    use crate::{EventId, RawJson, SubscriptionId, WorkspaceId};

    fn log() -> DeliveryLog {
        let (event, subscription) = (EventId::generate(), SubscriptionId::generate());
        DeliveryLog {
            id: "log-1".into(),
            workspace_id: WorkspaceId::generate(),
            delivery_id: DeliveryId::for_pair(&event, &subscription),
            event_id: event,
            subscription_id: subscription,
            event_type: "crm.deal_won".into(),
            webhook_url: "https://example.com/hook".into(),
            delivery_status: DeliveryStatus::Failed,
            status_code: None,
            response_body: "line one,\n\"quoted\"".into(),
            delivered_event_obj: RawJson::from_json(r#"{"data":{"amount":5}}"#.into()).unwrap(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            attempt: 2,
            duration_ms: 15,
            error: Some("connection refused".into()),
            expires_at: 0,
            batch_id: None,
        }
    }

    /// Read back with a CSV reader, each cell is the logs API's value as text.
    #[test]
    fn csv_rows_hold_the_logs_api_fields_under_a_header() {
        let log = log();
        let mut writer = RowWriter::new(Format::Csv);
        writer.write(&log);
        let mut first = writer.drain();
        writer.write(&log);
        first.extend(writer.drain());
        assert_eq!(writer.rows(), 2);
        assert_eq!(writer.bytes(), first.len() as u64);
        let mut reader = csv::Reader::from_reader(first.as_slice());
        assert_eq!(reader.headers().unwrap(), LOG_FIELDS.as_slice());
        let api = log_json(&log);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        for (field, cell) in LOG_FIELDS.iter().zip(rows[0].iter()) {
            let expected = match &api[*field] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(_) => {
                    let parsed: serde_json::Value = serde_json::from_str(cell).unwrap();
                    assert_eq!(parsed, api[*field], "{field}");
                    continue;
                }
                other => other.to_string(),
            };
            assert_eq!(cell, expected, "{field}");
        }
    }

    #[test]
    fn ndjson_rows_are_the_logs_api_objects_one_per_line() {
        let log = log();
        let mut writer = RowWriter::new(Format::Ndjson);
        writer.write(&log);
        writer.write(&log);
        let text = String::from_utf8(writer.drain()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let parsed: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(parsed, log_json(&log));
    }
}
