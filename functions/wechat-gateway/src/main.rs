use lambda_http::{Error, run, service_fn};
use wxopen::gateway::GatewaySettings;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let settings = GatewaySettings::from_env()?;
    let app = wechat_gateway::App::new(Runtime::load().await?.into_deps(), settings);
    run(service_fn(|req| wechat_gateway::handle(&app, req))).await
}
