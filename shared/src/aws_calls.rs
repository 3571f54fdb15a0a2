//! Every AWS API call a client makes, recorded by an SDK interceptor: the operation, and the
//! request and response bodies (what request units are computed from). For tests that count
//! calls and the cost bench; never installed by production code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// One attempt that reached the service and was answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub request: Vec<u8>,
    pub response: Vec<u8>,
}

/// The calls of every client it is installed on, in order. Cloning shares the log.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    /// The calls since the last take.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many calls of each `Service.Operation` the log holds now (without taking them).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let calls = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = BTreeMap::new();
        for call in calls.iter() {
            *counts
                .entry(format!("{}.{}", call.service, call.operation))
                .or_default() += 1;
        }
        counts
    }

    /// A DynamoDB client on `config` whose calls this log records.
    pub fn dynamodb(&self, config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// An SQS client on `config` whose calls this log records.
    pub fn sqs(&self, config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }
}

/// The request body of the attempt in flight, kept until its answer is read.
#[derive(Debug, Clone)]
struct SentBody(Vec<u8>);

impl Storable for SentBody {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context
            .request()
            .body()
            .bytes()
            .unwrap_or_default()
            .to_vec();
        cfg.interceptor_state().store_put(SentBody(body));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_default();
        let request = cfg
            .load::<SentBody>()
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let response = context
            .response()
            .body()
            .bytes()
            .unwrap_or_default()
            .to_vec();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(Call {
            service,
            operation,
            request,
            response,
        });
        Ok(())
    }
}
