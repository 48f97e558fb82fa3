use lambda_http::{Error, run, service_fn, tracing};
use wxopen::clock::SystemClock;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let rt = Runtime::load().await?;
    let app = component_events::App {
        store: rt.store,
        credentials: rt.credentials,
        clock: SystemClock,
        wechat: rt.wechat,
        push_window: rt.config.push_window,
        completion_budget: component_events::DEFAULT_COMPLETION_BUDGET,
    };
    run(service_fn(|req| component_events::handle(&app, req))).await
}
