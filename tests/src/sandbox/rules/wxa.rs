//! Mini program code management (`/wxa/…` with the mini program's authorizer token, permission
//! set 18): the categories the mini program may submit under, committing a template as the
//! trial version, and the trial version's QR code (a binary answer).
//!
//! The template library is not modelled: any integer `template_id` commits.

use serde_json::{Value, json};

use super::super::api::{Answer, err_json};
use super::super::state::{CodeCommit, Kind, State};
use super::super::util::str_field;
use super::Call;

/// Permission set 18 (小程序开发与数据分析): code management.
const CODE_MANAGEMENT: u32 = 18;

/// The categories every sandbox mini program has (WeChat's shape, ids from its catalogue).
fn categories() -> Value {
    json!([
        { "first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616 },
        { "first_class": "教育", "second_class": "在线教育", "first_id": 6, "second_id": 1058 },
    ])
}

/// The account must be a mini program that granted set 18 (61007 otherwise; an official
/// account holding it anyway gets 85015).
fn precheck(st: &State, call: &Call<'_>) -> Result<(), Answer> {
    let Some(m) = st.merchants.get(call.actor) else {
        return Err(Answer::err(61003, call.actor_appid()));
    };
    if !m.granted().contains(&CODE_MANAGEMENT) {
        return Err(Answer::err(61007, call.actor_appid()));
    }
    if m.kind != Kind::MiniProgram {
        return Err(Answer::err(85015, call.actor_appid()));
    }
    Ok(())
}

pub fn get_category(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    Answer::ok(
        json!({ "errcode": 0, "errmsg": "ok", "category_list": categories() }),
        call.actor_appid(),
    )
}

/// `{template_id, ext_json: "<JSON as a string>", user_version (≤ 64 chars), user_desc}`.
pub fn commit(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let body = call.body;
    // WeChat wants a number; a quoted id is a common mistake and does not find the template.
    let Some(template_id) = body
        .get("template_id")
        .and_then(Value::as_i64)
        .filter(|id| *id >= 0)
    else {
        return Answer::err(85014, call.actor_appid());
    };
    let ext_json = match body.get("ext_json") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Some(v),
            Ok(_) => return Answer::err(85013, call.actor_appid()),
            Err(_) => return Answer::err(85048, call.actor_appid()),
        },
        Some(_) => return Answer::err(85013, call.actor_appid()),
    };
    let user_version = str_field(body, "user_version").unwrap_or_default();
    if !(1..=64).contains(&user_version.chars().count()) {
        return Answer::err(85015, call.actor_appid());
    }
    let user_desc = str_field(body, "user_desc").unwrap_or_default();
    let at = st.now();
    let Some(m) = st.merchants.get_mut(call.actor) else {
        return Answer::err(61003, call.actor_appid());
    };
    m.committed = Some(CodeCommit {
        template_id,
        user_version,
        user_desc,
        ext_json,
        at,
    });
    Answer::ok(err_json(0), call.actor_appid())
}

/// The trial version's QR code: `image/jpeg` bytes (`QRCode.jpg`); 86001 before any commit.
/// The optional `path` query parameter is the page to open (any page is accepted).
pub fn get_qrcode(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let committed = st
        .merchants
        .get(call.actor)
        .is_some_and(|m| m.committed.is_some());
    if !committed {
        return Answer::err(86001, call.actor_appid());
    }
    Answer::bytes("image/jpeg", "QRCode.jpg", jpeg(), call.actor_appid())
}

/// A valid 1×1 grey baseline JPEG standing in for a QR code: one quantization table, one-code
/// Huffman tables, one block whose DC and AC codes are both `0`.
pub fn jpeg() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8]; // SOI
    out.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]); // DQT, table 0
    out.extend([1u8; 64]);
    // SOF0: 8-bit, 1×1, one component (id 1, 1×1 sampling, table 0).
    out.extend([
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00,
    ]);
    // DHT: DC table 0 and AC table 0, each one code of length 1 for symbol 0.
    for class in [0x00, 0x10] {
        out.extend([0xFF, 0xC4, 0x00, 0x14, class, 0x01]);
        out.extend([0u8; 15]);
        out.push(0x00);
    }
    // SOS: one component, tables 0/0, spectral 0..63; then DC 0 + EOB, padded with ones.
    out.extend([
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x3F,
    ]);
    out.extend([0xFF, 0xD9]); // EOI
    out
}
