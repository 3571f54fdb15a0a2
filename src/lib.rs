//! Hookline's local mode and admin commands, on the same handlers and ports as the Lambdas.

pub mod admin;
pub mod dlq;
pub mod local;
