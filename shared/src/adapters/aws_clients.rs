//! How long the Lambdas' DynamoDB and SQS clients wait. The SDK's defaults never give up on a
//! response that does not come, so a store or queue that stops answering would hold a request
//! until its function is killed (10 s), and the caller would get no `Retry-After`. With these
//! bounds every call fails within a few seconds and the API answers 503.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::ConfigLoader;

/// Opening a connection; the endpoints are regional and connect in milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One try of a call, its response included. No call the Lambdas make long-polls; a client for
/// one that does (a queue receive waiting for messages) must not use these bounds.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// A call with all its retries: three calls in a row still answer inside the function timeout.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Tries per call, the SDK's standard; their backoff is shortened to fit in [`CALL_TIMEOUT`].
pub const MAX_ATTEMPTS: u32 = 3;

/// `loader` with the bounds above.
pub fn bounded(loader: ConfigLoader) -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_millis(500));
    loader.timeout_config(timeouts).retry_config(retries)
}
