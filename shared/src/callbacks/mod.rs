//! The two push URLs, composed from the features: what the authorization event URL
//! ([`component`]) and the message URL ([`messages`]) do with a verified push, in order. This is
//! the one layer that calls several features; the features never call each other.

pub mod component;
pub mod fast_registration;
pub mod messages;
pub mod release_test;
