use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = login_session_create::App {
        login: rt.config.login_settings(),
        deps: rt.deps(),
    };
    run(service_fn(|req| login_session_create::handle(&app, req))).await
}
