use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = Runtime::load().await?.deps();
    run(service_fn(|req| access_token::handle(&app, req))).await
}
