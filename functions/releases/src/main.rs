use lambda_http::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = releases::App::from_runtime(Runtime::load().await?);
    run(service_fn(|req| releases::handle(&app, req))).await
}
