use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = message_events::App {
        push_window: rt.config.push_window,
        login: rt.config.login_settings(),
        deps: rt.deps(),
    };
    run(service_fn(|req| message_events::handle(&app, req))).await
}
