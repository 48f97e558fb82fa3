//! Handlers called directly, without the gateway.

mod component_events;
mod gateway_proxy;
mod releases;
mod status;
