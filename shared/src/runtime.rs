//! Production wiring shared by every function: config from the environment, then the DynamoDB
//! store, the cached Secrets Manager credentials and the WeChat client, built once per cold start.
//! The AWS configuration is kept ([`Runtime::aws`]) so a function that needs another client
//! (EventBridge for the push functions and the refresher, Lambda for a reply hook) builds it in
//! its own `from_runtime`: the other functions never construct those clients.
//!
//! Each function crate exposes `App::from_runtime(Runtime<C>)` ([`FromRuntime`]): its `main.rs`
//! calls it with [`Runtime::load`], and the local gateway calls the same constructor with a
//! runtime of its own, so a function is wired in exactly one place.

use crate::app::Deps;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::events::metrics::MetricSink;
use crate::events::{EventBridgePublisher, EventSettings};
use crate::secrets::{CachedCredentials, SecretsManagerSource};
use crate::store::DynamoStore;
use crate::wechat::{TokenParam, WeChatClient};

/// The credentials provider as deployed.
pub type Credentials = CachedCredentials<SecretsManagerSource>;

/// What a function is built from. `C` is the credentials provider (cached Secrets Manager in
/// production; the local stack shares one provider between functions).
pub struct Runtime<C = Credentials> {
    pub config: Config,
    pub store: DynamoStore,
    pub credentials: C,
    pub wechat: WeChatClient,
    /// The AWS configuration the clients are built from.
    pub aws: aws_config::SdkConfig,
    /// Where the functions' metric lines go (stdout: CloudWatch reads EMF from the log).
    pub metrics: MetricSink,
}

impl Runtime {
    /// Reads the config and builds the clients. Fails at init, never per request.
    pub async fn load() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let config = Config::from_env()?;
        let aws = aws_config::load_from_env().await;
        Self::from_parts(config, aws)
    }

    /// The clients [`Runtime::load`] builds, from a config and an AWS configuration already
    /// read (the IAM tests run the functions' wiring under each role's credentials with it).
    pub fn from_parts(
        config: Config,
        aws: aws_config::SdkConfig,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name),
            credentials: CachedCredentials::new(
                SecretsManagerSource::new(
                    aws_sdk_secretsmanager::Client::new(&aws),
                    &config.secret_id,
                ),
                config.secret_ttl,
            ),
            wechat: WeChatClient::new(&config.wechat_api_base, config.wechat_timeout)?
                .with_template_token_param(
                    TokenParam::parse(&config.wechat_template_token_param).unwrap_or_default(),
                ),
            config,
            aws,
            metrics: MetricSink::stdout(),
        })
    }
}

impl<C> Runtime<C> {
    /// The EventBridge publisher to the deployment's bus (the functions that publish events
    /// build it here, once per cold start).
    pub fn event_publisher(&self) -> EventBridgePublisher {
        EventBridgePublisher::from_settings(&self.aws, &EventSettings::from_config(&self.config))
    }

    /// The shared dependencies (store, credentials, clock, WeChat), consuming the runtime.
    pub fn into_deps(self) -> Deps<DynamoStore, C, SystemClock> {
        Deps {
            store: self.store,
            credentials: self.credentials,
            clock: SystemClock,
            tuning: crate::app::TokenTuning::from_config(&self.config),
            wechat: self.wechat,
        }
    }
}

/// A function's state, built from the runtime: the one constructor `main.rs` and the local
/// gateway both use.
pub trait FromRuntime<C>: Sized {
    fn from_runtime(rt: Runtime<C>) -> Self;
}

impl<C> FromRuntime<C> for Deps<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        rt.into_deps()
    }
}
