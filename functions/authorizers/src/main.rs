use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = authorizers::App { store: rt.store };
    run(service_fn(|req| authorizers::handle(&app, req))).await
}
