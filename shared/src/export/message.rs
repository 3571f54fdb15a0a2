//! The exports queue's message: which job to run. The job's record holds the rest.

use serde::{Deserialize, Serialize};

use crate::ids::{ExportJobId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "export")]
pub struct ExportMessage {
    pub workspace_id: WorkspaceId,
    pub job_id: ExportJobId,
}

impl ExportMessage {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("messages serialize")
    }

    pub fn from_body(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_written_and_names_its_kind() {
        let message = ExportMessage {
            workspace_id: WorkspaceId::generate(),
            job_id: ExportJobId::generate(),
        };
        let body = message.to_body();
        assert!(body.contains(r#""kind":"export""#), "{body}");
        assert_eq!(ExportMessage::from_body(&body).unwrap(), message);
        assert!(ExportMessage::from_body(r#"{"kind":"deliver"}"#).is_err());
    }
}
