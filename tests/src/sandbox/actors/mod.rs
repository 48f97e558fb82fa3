//! The actors besides WeChat itself that the control API drives: merchants, users and the people who confirm a fast registration. (WeChat's
//! release-test robot is `release.rs`; WeChat's own ticket pushes are in `push.rs`.)

pub mod merchant;
pub mod registrant;
pub mod user;
