use lambda_http::{Error, run, service_fn, tracing};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let app = Runtime::load().await?.deps();
    run(service_fn(|req| access_token::handle(&app, req))).await
}
