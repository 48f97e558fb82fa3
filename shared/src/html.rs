//! The one page shell every HTML page shares (the merchant's authorization pages, the hosted
//! sign-in page): escaping, the style, the document. Chinese first with English beside it; no
//! external scripts, fonts or styles. The security headers that go with a page are set at the
//! edge (`http::page_response`).

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

pub const STYLE: &str = "body{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;background:#f5f6f7;color:#1f2329;margin:0}\
main{max-width:32rem;margin:12vh auto;background:#fff;border-radius:12px;padding:2.5rem;box-shadow:0 2px 12px rgba(0,0,0,.08);text-align:center}\
h1{font-size:1.4rem;margin:0 0 .75rem}p{line-height:1.6;color:#4e5969}\
a.button{display:inline-block;margin-top:1.25rem;padding:.8rem 1.6rem;border-radius:8px;background:#07c160;color:#fff;text-decoration:none;font-weight:600}\
a.secondary{display:block;margin-top:1rem;color:#576b95}.ok{color:#07c160}.fail{color:#f53f3f}small{color:#86909c}\
@media (max-width:480px){main{margin:0;min-height:100vh;border-radius:0;box-shadow:none;padding:1.5rem 1.25rem;box-sizing:border-box}}";

/// A whole page: `title` (escaped), extra style, the body (already HTML) and an optional inline
/// script (its CSP nonce given by the caller).
pub fn document(
    title: &str,
    extra_style: &str,
    body: &str,
    script: Option<(&str, &str)>,
) -> String {
    let script = match script {
        Some((nonce, js)) => format!("<script nonce=\"{}\">{js}</script>", escape_html(nonce)),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{STYLE}{extra_style}</style></head><body><main>{body}</main>{script}</body></html>",
        escape_html(title)
    )
}

/// A page with no script.
pub fn page(title: &str, body: &str) -> String {
    document(title, "", body, None)
}

/// A fresh nonce for a page's inline script (`Content-Security-Policy: script-src 'nonce-…'`).
pub fn script_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
