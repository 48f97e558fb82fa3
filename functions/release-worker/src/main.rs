use lambda_runtime::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = release_worker::App::from_runtime(Runtime::load().await?);
    run(service_fn(|event| release_worker::handle(&app, event))).await
}
