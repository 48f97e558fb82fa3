use lambda_http::{Error, run, service_fn};
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = component_events::App {
        push_window: rt.config.push_window,
        completion_budget: component_events::DEFAULT_COMPLETION_BUDGET,
        deps: rt.deps(),
    };
    run(service_fn(|req| component_events::handle(&app, req))).await
}
