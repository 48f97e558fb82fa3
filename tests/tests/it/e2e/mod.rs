//! Whole flows: the gateway, the functions, moto and the sandbox together.

mod authorization;
mod events;
mod messages;
mod open_account;
