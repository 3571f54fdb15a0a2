//! The export file in S3: a multipart upload fed part by part (so no file is ever held whole),
//! then a presigned GET link.

use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use chrono::Utc;

use crate::export::{Download, ExportJob, ExportSink, ExportUpload, SinkError};

/// How long an emailed link works.
pub const LINK_TTL: Duration = Duration::from_secs(24 * 3600);

fn failed<E: std::error::Error + 'static>(what: &str) -> impl Fn(E) -> SinkError + '_ {
    move |err| SinkError(format!("{what}: {}", DisplayErrorContext(err)))
}

/// Export files under `exports/<workspace>/<job>.<ext>` in one bucket (which encrypts them
/// and deletes them after 7 days, per `template.yaml`).
#[derive(Clone)]
pub struct S3Sink {
    client: aws_sdk_s3::Client,
    bucket: String,
    link_ttl: Duration,
}

impl S3Sink {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            link_ttl: LINK_TTL,
        }
    }

    /// The object key of a job's file.
    pub fn key(job: &ExportJob) -> String {
        format!(
            "exports/{}/{}.{}",
            job.workspace_id,
            job.id,
            job.request.format.extension()
        )
    }
}

impl ExportSink for S3Sink {
    type Upload = S3Upload;

    async fn start(&self, job: &ExportJob) -> Result<S3Upload, SinkError> {
        let key = Self::key(job);
        let file_name = format!(
            "hookline-logs-{}.{}",
            job.id,
            job.request.format.extension()
        );
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(job.request.format.content_type())
            .content_disposition(format!("attachment; filename=\"{file_name}\""))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(failed("starting the upload"))?;
        let upload_id = created
            .upload_id
            .ok_or_else(|| SinkError("S3 returned no upload id".into()))?;
        Ok(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key,
            upload_id,
            parts: Vec::new(),
            link_ttl: self.link_ttl,
        })
    }
}

/// One multipart upload in progress.
pub struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    link_ttl: Duration,
}

impl ExportUpload for S3Upload {
    async fn write_part(&mut self, part: Vec<u8>) -> Result<(), SinkError> {
        let number = self.parts.len() as i32 + 1;
        let sent = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(failed("uploading a part"))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag)
                .build(),
        );
        Ok(())
    }

    async fn finish(mut self) -> Result<Download, SinkError> {
        if self.parts.is_empty() {
            // An empty file is one empty part.
            self.write_part(Vec::new()).await?;
        }
        let parts = std::mem::take(&mut self.parts);
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(failed("completing the upload"))?;
        let presigning = PresigningConfig::expires_in(self.link_ttl)
            .map_err(|e| SinkError(format!("link expiry: {e}")))?;
        let signed = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .presigned(presigning)
            .await
            .map_err(failed("signing the link"))?;
        Ok(Download {
            url: signed.uri().to_owned(),
            expires_at: Utc::now() + self.link_ttl,
        })
    }

    async fn abort(self) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(err) = aborted {
            // The bucket's lifecycle rule cleans up what an abort leaves.
            tracing::warn!(key = self.key, error = %DisplayErrorContext(err), "export upload not aborted");
        }
    }
}
