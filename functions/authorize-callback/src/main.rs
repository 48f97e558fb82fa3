use lambda_http::{Error, run, service_fn, tracing};
use wxopen::clock::SystemClock;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let rt = Runtime::load().await?;
    let app = authorize_callback::App {
        store: rt.store,
        credentials: rt.credentials,
        clock: SystemClock,
        wechat: rt.wechat,
    };
    run(service_fn(|req| authorize_callback::handle(&app, req))).await
}
