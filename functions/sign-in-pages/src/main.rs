use lambda_http::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = sign_in_pages::App::from_runtime(Runtime::load().await?);
    run(service_fn(|req| sign_in_pages::handle(&app, req))).await
}
