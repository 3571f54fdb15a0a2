//! DynamoDB adapter for export jobs.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::{get_item, get_n, get_s, n, pk_sk, s, transact_at, unavailable, Item};
use crate::adapters::now_epoch_seconds;
use crate::error::StoreError;
use crate::export::{ExportJob, ExportJobStore, Opened};
use crate::ids::{ExportJobId, WorkspaceId};

/// The sort key of the item naming the job that holds its workspace, and until when.
const HOLDER_SK: &str = "holder";
const JOB_PREFIX: &str = "job#";
/// Where the holder's write sits in a create's transaction.
const HOLDER_WRITE: usize = 0;

table_adapter!(
    /// Exports table: a job at `pk` = workspace, `sk` = `job#<id>`, with its `version`; and the
    /// workspace's `holder` item (`job`, `until` in epoch ms) that keeps a second export from
    /// starting while one holds it. TTL `expires_at` on both.
    DynamoExports
);

fn job_item(job: &ExportJob) -> Item {
    let mut item = pk_sk(job.workspace_id.as_str(), format!("{JOB_PREFIX}{}", job.id));
    item.insert("version".into(), n(job.version as i64));
    item.insert(
        "doc".into(),
        s(serde_json::to_string(job).expect("jobs serialize")),
    );
    item.insert("expires_at".into(), n(job.record_expires_at()));
    item
}

impl DynamoExports {
    fn holder_key(workspace: &WorkspaceId) -> Item {
        pk_sk(workspace.as_str(), HOLDER_SK)
    }

    /// Moves the workspace's holder along with `job`: extended while the job holds it, removed
    /// once the job is finished; left alone when another job holds it now.
    async fn follow_holder(&self, job: &ExportJob) -> Result<(), StoreError> {
        let key = Self::holder_key(&job.workspace_id);
        let mine = s(job.id.as_str());
        // A refused condition: another job (or none) holds the workspace; nothing of ours to move.
        match job.holds_workspace_until() {
            Some(until) => {
                let sent = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression("SET #until = :until")
                    .condition_expression("job = :me")
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_values(":until", n(until.timestamp_millis()))
                    .expression_attribute_values(":me", mine)
                    .send()
                    .await;
                match sent.map_err(|e| e.into_service_error()) {
                    Ok(_) | Err(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                    Err(other) => Err(unavailable(other)),
                }
            }
            None => {
                let sent = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression("job = :me")
                    .expression_attribute_values(":me", mine)
                    .send()
                    .await;
                match sent.map_err(|e| e.into_service_error()) {
                    Ok(_) | Err(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(()),
                    Err(other) => Err(unavailable(other)),
                }
            }
        }
    }
}

impl ExportJobStore for DynamoExports {
    async fn create_job(&self, job: &ExportJob) -> Result<Opened, StoreError> {
        let until = job
            .holds_workspace_until()
            .expect("a new job holds its workspace");
        let mut holder = Self::holder_key(&job.workspace_id);
        holder.insert("job".into(), s(job.id.as_str()));
        holder.insert("until".into(), n(until.timestamp_millis()));
        holder.insert("expires_at".into(), n(job.record_expires_at()));
        let hold = Put::builder()
            .table_name(&self.table)
            .set_item(Some(holder))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(chrono::Utc::now().timestamp_millis()))
            .build()
            .map_err(unavailable)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(job_item(job)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let writes = vec![
            TransactWriteItem::builder().put(hold).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match transact_at(&self.client, writes).await? {
            None => Ok(Opened::Opened),
            Some(HOLDER_WRITE) => {
                let holder = get_item(
                    &self.client,
                    &self.table,
                    Self::holder_key(&job.workspace_id),
                )
                .await?
                .ok_or_else(|| StoreError::Unavailable("export holder vanished".into()))?;
                let id = get_s(&holder, "job")?;
                let id = ExportJobId::parse(id)
                    .ok_or_else(|| StoreError::Corrupt(format!("export job id {id:?}")))?;
                Ok(Opened::Busy(id))
            }
            Some(_) => Err(StoreError::Corrupt(format!("export job {} exists", job.id))),
        }
    }

    async fn get_job(
        &self,
        workspace: &WorkspaceId,
        id: &ExportJobId,
    ) -> Result<Option<ExportJob>, StoreError> {
        let key = pk_sk(workspace.as_str(), format!("{JOB_PREFIX}{id}"));
        let Some(item) = get_item(&self.client, &self.table, key).await? else {
            return Ok(None);
        };
        // `expiry::is_live`: an expired record is gone even before TTL removes it.
        if get_n::<i64>(&item, "expires_at")? < now_epoch_seconds() {
            return Ok(None);
        }
        serde_json::from_str(get_s(&item, "doc")?)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("export job: {e}")))
    }

    async fn replace_job(
        &self,
        current: &ExportJob,
        updated: &ExportJob,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(updated)))
            .condition_expression("version = :version")
            .expression_attribute_values(":version", n(current.version as i64))
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => return Ok(false),
                other => return Err(unavailable(other)),
            },
        }
        self.follow_holder(updated).await?;
        Ok(true)
    }
}
