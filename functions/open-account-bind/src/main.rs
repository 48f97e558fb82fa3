use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = Runtime::load().await?.deps();
    run(service_fn(|req| open_account_bind::handle(&app, req))).await
}
