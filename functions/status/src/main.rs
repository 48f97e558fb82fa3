use lambda_http::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = status::App::from_runtime(Runtime::load().await?);
    run(service_fn(|req| status::handle(&app, req))).await
}
