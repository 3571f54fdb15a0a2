//! The environment variables the export's functions read (beside `config.rs`'s shared ones).

/// The exports table (jobs and each workspace's running export).
pub const EXPORTS_TABLE: &str = "HOOKLINE_EXPORTS_TABLE";
/// The exports queue the notify API sends jobs to.
pub const EXPORTS_QUEUE_URL: &str = "HOOKLINE_EXPORTS_QUEUE_URL";
/// The bucket export files are written to.
pub const EXPORTS_BUCKET: &str = "HOOKLINE_EXPORTS_BUCKET";
/// The address export emails come from: a verified SES identity when deployed.
pub const EXPORT_SENDER: &str = "HOOKLINE_EXPORT_SENDER";
/// Local mode: send export emails through this SMTP server (`smtp://host:port`,
/// `smtps://user:pass@host`) instead of writing them to the outbox.
pub const SMTP_URL: &str = "HOOKLINE_SMTP_URL";
/// Path-style S3 URLs (an S3-compatible endpoint such as a local emulator).
pub const S3_FORCE_PATH_STYLE: &str = "HOOKLINE_S3_FORCE_PATH_STYLE";
