use lambda_http::{Error, run, service_fn, tracing};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let rt = Runtime::load().await?;
    let app = login_session_create::App {
        login: rt.config.login_settings(),
        deps: rt.deps(),
    };
    run(service_fn(|req| login_session_create::handle(&app, req))).await
}
