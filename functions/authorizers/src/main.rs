use lambda_http::{Error, run, service_fn, tracing};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let rt = Runtime::load().await?;
    let app = authorizers::App { store: rt.store };
    run(service_fn(|req| authorizers::handle(&app, req))).await
}
