use lambda_http::{Error, run, service_fn};
use wxopen::clock::SystemClock;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = login_session_status::App {
        store: rt.store,
        clock: SystemClock,
    };
    run(service_fn(|req| login_session_status::handle(&app, req))).await
}
