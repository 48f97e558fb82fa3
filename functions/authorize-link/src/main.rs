use lambda_http::{Error, run, service_fn};
use wxopen::authorization::LinkHosts;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = authorize_link::App {
        hosts: LinkHosts {
            mp_base: rt.config.wechat_mp_base.clone(),
            open_base: rt.config.wechat_open_base.clone(),
        },
        public_base: rt.config.public_base_url.clone(),
        deps: rt.deps(),
    };
    run(service_fn(|req| authorize_link::handle(&app, req))).await
}
