//! Tests that run once per backend: the DynamoDB/SQS adapters on moto and the embedded store.

/// How often the events queue delivers a message before dead-lettering it, on every stack.
pub const MAX_RECEIVES: u32 = 5;

/// One `#[tokio::test]` per backend (DynamoDB/SQS on moto, embedded), in a module named after
/// the test, each running `$test` on the ports its stack builds under the names given, in
/// that order (`workspaces`, `subscriptions`, `logs`, `queue`, …).
macro_rules! both_backends {
    ($test:ident($($port:ident),+ $(,)?)) => {
        mod $test {
            use super::*;

            #[tokio::test]
            async fn dynamodb() {
                let stack =
                    $crate::support::MotoStack::create($crate::backends::MAX_RECEIVES).await;
                $test($(stack.$port()),+).await;
            }

            #[tokio::test]
            async fn embedded() {
                let stack = $crate::support::EmbeddedStack::create($crate::backends::MAX_RECEIVES);
                $test($(stack.$port()),+).await;
            }
        }
    };
}

pub(crate) use both_backends;
