//! Integration tests: adapters against a real DynamoDB/SQS-compatible server and SQLite, the
//! ingest handler end to end, local mode as a process, and the Lambda binary under emulation.

mod backends;
mod connections;
mod contract;
mod crash;
mod delivery;
mod delivery_modes;
mod dlq;
mod event_types_api;
mod export;
mod hostile;
mod ingest_api;
mod isolation;
mod lambda_emulator;
mod local_mode;
mod notify_api;
mod openapi;
mod operational;
mod outage;
mod private_targets;
mod publish;
mod rate_limit;
mod receiver;
mod redelivery;
mod signature_verifiers;
mod support;
mod switch_proxy;
