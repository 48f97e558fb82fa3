//! The hosted follow-to-log-in page (`GET /login/{id}`): the QR code large, short instructions,
//! the time left, and a small inline script that polls `{id}/status` every 0.5 s (which says nothing but
//! `pending` / `confirmed` / `expired`) and, on confirmation, reloads the page, which then sends
//! the browser on with its one-time login code. Chinese first with English beside it; no external
//! script, font or style; the content security policy admits only the QR image's origin.

use crate::html::{document, escape_html};
use crate::login_codes;
use crate::model::LoginSession;

/// A rendered page and the `Content-Security-Policy` it needs.
#[derive(Debug, Clone)]
pub struct Page {
    pub html: String,
    pub csp: String,
}

const EXTRA_STYLE: &str = "#qr{display:block;width:260px;height:260px;max-width:72vw;max-height:72vw;margin:1.25rem auto;border:1px solid #e5e6eb;border-radius:8px;image-rendering:pixelated;background:#fff}\
ol{text-align:left;display:inline-block;margin:0 auto;padding-left:1.2rem;color:#4e5969;line-height:1.8}\
#expired{display:none}main[data-state=expired] #expired{display:block}main[data-state=expired] #qr{opacity:.15}main[data-state=expired] #waiting{display:none}\
.en{color:#86909c;font-size:.92em}";

const SCRIPT: &str = r#"(function(){var m=document.querySelector('main'),id=m.dataset.session,left=parseInt(m.dataset.left,10),t0=Date.now();
var qr=document.getElementById('qr'),rem=document.getElementById('remaining');
function ready(){qr.dataset.loaded='true';if(m.dataset.state==='pending'){document.title='请扫码 · Scan to sign in';}}
if(qr.complete&&qr.naturalWidth>0){ready();}else{qr.addEventListener('load',ready);}
function expire(){m.dataset.state='expired';document.title='二维码已过期 · Code expired';}
function tick(){var s=Math.max(0,left-Math.floor((Date.now()-t0)/1000));rem.textContent=Math.floor(s/60)+':'+('0'+s%60).slice(-2);if(s===0&&m.dataset.state==='pending'){expire();}}
function poll(){if(m.dataset.state!=='pending'){return;}fetch(id+'/status',{cache:'no-store',credentials:'omit'}).then(function(r){return r.json();}).then(function(b){
if(b.status==='confirmed'){m.dataset.state='confirmed';document.getElementById('waiting').textContent='已确认，正在登录… · Confirmed, signing you in…';location.replace(location.pathname);}
else if(b.status==='expired'){expire();}else{setTimeout(poll,500);}}).catch(function(){setTimeout(poll,2000);});}
tick();setInterval(tick,1000);if(m.dataset.state==='pending'){setTimeout(poll,500);}})();"#;

fn origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

/// The page of a pending or expired session.
pub fn login_page(session: &LoginSession, now: i64, nonce: &str) -> Page {
    let left = (session.expires_at - now).max(0);
    let state = if left == 0 { "expired" } else { "pending" };
    let new_code = session
        .return_to
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| login_codes::return_url(&u, ("login_error", "expired"), session.state.as_deref()))
        .unwrap_or_default();
    let body = format!(
        "<h1>微信扫码登录 <span class=\"en\">· Sign in with WeChat</span></h1>\
<img id=\"qr\" src=\"{qr}\" alt=\"登录二维码 · sign-in QR code\" width=\"260\" height=\"260\">\
<ol><li>打开微信，扫描二维码 <span class=\"en\">· Open WeChat and scan the code</span></li>\
<li>关注公众号即完成登录 <span class=\"en\">· Follow the official account to sign in</span></li></ol>\
<p id=\"waiting\">等待扫码 <span class=\"en\">· Waiting for your scan</span><br><small id=\"expiry\">二维码 <span id=\"remaining\"></span> 后过期 · The code expires in the time shown</small></p>\
<div id=\"expired\"><p class=\"fail\">二维码已过期 <span class=\"en\">· This code has expired</span></p>\
<a class=\"button\" id=\"new-code\" href=\"{new_code}\">获取新二维码 · Get a new code</a></div>",
        qr = escape_html(&session.qr_url),
        new_code = escape_html(&new_code),
    );
    let html = document(
        "微信扫码登录 · Sign in with WeChat",
        EXTRA_STYLE,
        &body,
        Some((nonce, SCRIPT)),
    )
    .replacen(
        "<main>",
        &format!(
            "<main data-session=\"{}\" data-state=\"{state}\" data-left=\"{left}\">",
            escape_html(&session.id)
        ),
        1,
    );
    let img = origin(&session.qr_url).unwrap_or_else(|| "'none'".into());
    Page {
        html,
        csp: format!(
            "default-src 'none'; img-src {img}; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
    }
}

/// A page that only says something (unknown session, already used, a refused OAuth callback).
pub fn message_page(title_zh: &str, title_en: &str, detail: &str) -> Page {
    Page {
        html: document(
            &format!("{title_zh} · {title_en}"),
            "",
            &format!(
                "<h1 class=\"fail\">{} <span class=\"en\">· {}</span></h1><p id=\"reason\">{}</p>",
                escape_html(title_zh),
                escape_html(title_en),
                escape_html(detail)
            ),
            None,
        ),
        csp: "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'".into(),
    }
}
