use lambda_http::{Error, run, service_fn, tracing};
use wxopen::clock::SystemClock;
use wxopen::config::Config;
use wxopen::secrets::{CachedCredentials, SecretsManagerSource};
use wxopen::store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = component_events::App {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name),
        credentials: CachedCredentials::new(
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws), &config.secret_id),
            config.secret_ttl,
        ),
        clock: SystemClock,
        push_window: config.push_window,
    };
    run(service_fn(|req| component_events::handle(&app, req))).await
}
