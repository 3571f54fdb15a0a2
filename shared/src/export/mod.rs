//! Log export: a job that writes a workspace's delivery logs to a file (CSV or NDJSON) off the
//! request path and emails a link to it.
//!
//! The request and its rules (`request.rs`), the job and its states with the lease that keeps
//! a crashed worker's job from staying "running" (`job.rs`), the rows (`rows.rs`), the paging
//! through the logs (`pages.rs`), the emails in each language (`email.rs`), the queue message
//! (`message.rs`) and the ports the worker writes through (`ports.rs`).

pub mod email;
pub mod job;
pub mod message;
pub mod pages;
pub mod ports;
pub mod request;
pub mod rows;
pub mod settings;

pub use email::{ExportEmail, Lang};
pub use job::{ExportJob, ExportStatus, JobClaim};
pub use message::ExportMessage;
pub use ports::{
    Download, ExportJobStore, ExportSink, ExportUpload, MailError, Mailer, Opened, SinkError,
};
pub use request::{ExportRequest, Format};
