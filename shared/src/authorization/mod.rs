//! Merchant authorization: the links a merchant opens ([`links`]), the pages it sees
//! ([`pages`]), and the code exchange that records the authorizer with its tokens, exactly once
//! ([`exchange`]). The permission sets it grants are named in [`crate::permissions`].

pub mod exchange;
pub mod links;
pub mod pages;

pub use exchange::{
    Exchange, ProfilesFilled, complete_pending, exchange_change, exchange_code,
    fill_missing_profiles, profile_record, recover_authorization,
};
pub use links::{
    AuthType, AuthorizationLinks, CreatedLink, LinkError, LinkHint, LinkHosts, LinkOptions,
    LinkPage, LinkSettings, NewLink, bind_authorization, build_links, callback_link,
    check_customer_ref, create_link, is_link_id, link_page, link_redirect_uri, link_status,
    page_url, redirect_uri,
};
pub use pages::{authorize_page, escape_html, failure_page, success_page};
