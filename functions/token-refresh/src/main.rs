use lambda_runtime::{Error, run, service_fn};
use wxopen::refresher::RefreshSettings;
use wxopen::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wxopen::logging::init();
    let rt = Runtime::load().await?;
    let app = token_refresh::App {
        settings: RefreshSettings {
            window_secs: i64::try_from(rt.config.refresh_window.as_secs()).unwrap_or(900),
            ..RefreshSettings::default()
        },
        deps: rt.deps(),
    };
    run(service_fn(|event| token_refresh::handle(&app, event))).await
}
