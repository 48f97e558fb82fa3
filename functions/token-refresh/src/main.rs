use lambda_runtime::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = token_refresh::App::from_runtime(Runtime::load().await?);
    run(service_fn(|event| token_refresh::handle(&app, event))).await
}
