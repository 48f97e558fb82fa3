//! Whole flows: the gateway, the functions, moto and the sandbox together.

mod authorization;
mod code;
mod events;
mod fast_registration;
mod gateway;
mod links;
mod messages;
mod open_account;
mod release_kill;
pub(crate) mod releases;
mod sign_in;
mod sign_in_page;
