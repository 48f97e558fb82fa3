use lambda_http::{Error, run, service_fn, tracing};
use wxopen::clock::SystemClock;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let rt = Runtime::load().await?;
    let app = authorize_link::App {
        hosts: wxopen::authorization::LinkHosts {
            mp_base: rt.config.wechat_mp_base.clone(),
            open_base: rt.config.wechat_open_base.clone(),
        },
        public_base: rt.config.public_base_url.clone(),
        store: rt.store,
        credentials: rt.credentials,
        clock: SystemClock,
        wechat: rt.wechat,
    };
    run(service_fn(|req| authorize_link::handle(&app, req))).await
}
