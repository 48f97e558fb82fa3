//! The HTML pages a merchant sees: the authorization page and its outcome.

use super::links::AuthorizationLinks;

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif;background:#f5f6f7;color:#1f2329;margin:0}\
main{max-width:32rem;margin:12vh auto;background:#fff;border-radius:12px;padding:2.5rem;box-shadow:0 2px 12px rgba(0,0,0,.08);text-align:center}\
h1{font-size:1.4rem;margin:0 0 .75rem}p{line-height:1.6;color:#4e5969}\
a.button{display:inline-block;margin-top:1.25rem;padding:.8rem 1.6rem;border-radius:8px;background:#07c160;color:#fff;text-decoration:none;font-weight:600}\
a.secondary{display:block;margin-top:1rem;color:#576b95}.ok{color:#07c160}.fail{color:#f53f3f}small{color:#86909c}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape_html(title)
    )
}

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
