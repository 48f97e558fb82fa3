use lambda_http::{Error, run, service_fn};
use wxopen::runtime::{FromRuntime, Runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let app = wechat_gateway::App::from_runtime(Runtime::load().await?);
    run(service_fn(|req| wechat_gateway::handle(&app, req))).await
}
