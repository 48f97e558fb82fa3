//! The HTML pages a merchant sees: the authorization page and its outcome.

use super::links::AuthorizationLinks;

pub use crate::html::escape_html;
use crate::html::page;

/// The authorization page: WeChat requires the link to be opened by a click on a page of the
/// registered domain, so this page is served by wxopen itself.
pub fn authorize_page(links: &AuthorizationLinks) -> String {
    page(
        "授权公众号/小程序 · Authorize",
        &format!(
            "<h1>授权给服务商 · Authorize the provider</h1><p>使用公众号或小程序管理员微信扫码完成授权。<br>Scan with the WeChat of the account's administrator to authorize.</p>\
             <a class=\"button\" id=\"authorize-pc\" href=\"{}\">前往授权 · Authorize</a>\
             <a class=\"secondary\" id=\"authorize-mobile\" href=\"{}\">在微信中打开 · Open in WeChat (mobile)</a>\
             <p><small>This link works once and expires soon; reload the page for a new one.</small></p>",
            escape_html(&links.pc_url),
            escape_html(&links.mobile_url)
        ),
    )
}

/// The page after a successful authorization.
pub fn success_page(appid: &str, nick_name: Option<&str>) -> String {
    let who = match nick_name {
        Some(n) if !n.is_empty() => format!("{} ({})", escape_html(n), escape_html(appid)),
        _ => escape_html(appid),
    };
    page(
        "授权成功 · Authorized",
        &format!(
            "<h1 class=\"ok\">授权成功 · Authorization complete</h1><p id=\"authorizer\">{who}</p><p>You can close this page.</p>"
        ),
    )
}

/// The page after a failed authorization (never a 500).
pub fn failure_page(reason: &str) -> String {
    page(
        "授权未完成 · Not authorized",
        &format!(
            "<h1 class=\"fail\">授权未完成 · Authorization not completed</h1><p id=\"reason\">{}</p><p>Go back to the authorization page and start again.</p>",
            escape_html(reason)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape() {
        let links = AuthorizationLinks {
            pc_url: "https://a/?x=1&y=\"2\"".into(),
            mobile_url: "m".into(),
            expires_at: 0,
        };
        let html = authorize_page(&links);
        assert!(html.contains("href=\"https://a/?x=1&amp;y=&quot;2&quot;\""));
        assert!(failure_page("<script>").contains("&lt;script&gt;"));
        assert!(success_page("wxa", Some("A & B")).contains("A &amp; B (wxa)"));
    }
}
