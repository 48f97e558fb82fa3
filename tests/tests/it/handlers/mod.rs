//! Handlers called directly, without the gateway.

mod component_events;
mod gateway_proxy;
mod release_worker;
mod releases;
mod status;
