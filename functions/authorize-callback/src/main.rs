use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = Runtime::load().await?.deps();
    run(service_fn(|req| authorize_callback::handle(&app, req))).await
}
