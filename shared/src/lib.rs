pub mod crypto;
pub mod xml;
