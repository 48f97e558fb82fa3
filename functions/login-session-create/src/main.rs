use lambda_http::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = login_session_create::App::from_runtime(Runtime::load().await?);
    run(service_fn(|req| login_session_create::handle(&app, req))).await
}
