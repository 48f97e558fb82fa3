//! Production wiring shared by every function's `main`: config from the environment, then the
//! DynamoDB store, the cached Secrets Manager credentials and the WeChat client, built once.

use crate::config::Config;
use crate::secrets::{CachedCredentials, SecretsManagerSource};
use crate::store::DynamoStore;
use crate::wechat::WeChatClient;

pub type Credentials = CachedCredentials<SecretsManagerSource>;

pub struct Runtime {
    pub config: Config,
    pub store: DynamoStore,
    pub credentials: Credentials,
    pub wechat: WeChatClient,
}

impl Runtime {
    /// Reads the config and builds the clients. Fails at init, never per request.
    pub async fn load() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let config = Config::from_env()?;
        let aws = aws_config::load_from_env().await;
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name),
            credentials: CachedCredentials::new(
                SecretsManagerSource::new(
                    aws_sdk_secretsmanager::Client::new(&aws),
                    &config.secret_id,
                ),
                config.secret_ttl,
            ),
            wechat: WeChatClient::new(&config.wechat_api_base, config.wechat_timeout)?,
            config,
        })
    }
}
