//! The passive replies a reply hook may answer, parsed strictly from its JSON and rendered as
//! WeChat's reply XML (plaintext; seal it with `crypto::seal_reply` before answering).
//!
//! The hook's answer (HTTP body or Lambda payload):
//!
//! | answer | meaning |
//! |---|---|
//! | empty body, `null`, `{}`, `{"type":"none"}` | no reply (`success`) |
//! | `{"type":"text","content":"…"}` | text |
//! | `{"type":"image","media_id":"…"}`, `{"type":"voice","media_id":"…"}` | image / voice |
//! | `{"type":"video","media_id":"…","title"?,"description"?}` | video |
//! | `{"type":"music","thumb_media_id":"…","title"?,"description"?,"music_url"?,"hq_music_url"?}` | music |
//! | `{"type":"news","articles":[{"title","description"?,"pic_url"?,"url"?}]}` (1 to 8) | news |
//! | `{"type":"transfer_customer_service","kf_account"?}` | hand the user to customer service |
//!
//! Unknown types or fields, wrong types, empty required values, oversize values, characters
//! XML cannot carry, non-http(s) URLs: [`ReplyError`], never a panic.

use serde::Deserialize;

use crate::xml::cdata;

/// Largest hook answer read.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Text content (WeChat's limit for a passive text reply is commonly cited as 2048 bytes).
pub const MAX_TEXT_BYTES: usize = 2048;
pub const MAX_MEDIA_ID_BYTES: usize = 256;
pub const MAX_TITLE_BYTES: usize = 512;
pub const MAX_DESCRIPTION_BYTES: usize = 2048;
pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_ARTICLES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the hook's answer exceeds {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("the hook's answer is not a valid reply: {0}")]
    Malformed(String),
    #[error("reply field {field} is invalid: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub title: String,
    pub description: Option<String>,
    pub pic_url: Option<String>,
    pub url: Option<String>,
}

/// A passive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassiveReply {
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    Video {
        media_id: String,
        title: Option<String>,
        description: Option<String>,
    },
    Music {
        title: Option<String>,
        description: Option<String>,
        music_url: Option<String>,
        hq_music_url: Option<String>,
        thumb_media_id: String,
    },
    News {
        articles: Vec<Article>,
    },
    TransferCustomerService {
        kf_account: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireArticle {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pic_url: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Wire {
    None,
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    Video {
        media_id: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    Music {
        thumb_media_id: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        music_url: Option<String>,
        #[serde(default)]
        hq_music_url: Option<String>,
    },
    News {
        articles: Vec<WireArticle>,
    },
    TransferCustomerService {
        #[serde(default)]
        kf_account: Option<String>,
    },
}

/// A character XML 1.0 can carry (CDATA cannot escape the others).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn text(field: &'static str, value: String, max: usize) -> Result<String, ReplyError> {
    if value.trim().is_empty() {
        return Err(ReplyError::Invalid {
            field,
            why: "empty",
        });
    }
    if value.len() > max {
        return Err(ReplyError::Invalid {
            field,
            why: "too long",
        });
    }
    if !value.chars().all(xml_char) {
        return Err(ReplyError::Invalid {
            field,
            why: "holds a character XML cannot carry",
        });
    }
    Ok(value)
}

fn optional(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ReplyError> {
    match value {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => text(field, v, max).map(Some),
        None => Ok(None),
    }
}

fn media_id(field: &'static str, value: String) -> Result<String, ReplyError> {
    let v = text(field, value, MAX_MEDIA_ID_BYTES)?;
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ReplyError::Invalid {
            field,
            why: "not a media id",
        });
    }
    Ok(v)
}

fn url(field: &'static str, value: Option<String>) -> Result<Option<String>, ReplyError> {
    let Some(v) = optional(field, value, MAX_URL_BYTES)? else {
        return Ok(None);
    };
    match url::Url::parse(&v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(v)),
        _ => Err(ReplyError::Invalid {
            field,
            why: "not an http(s) URL",
        }),
    }
}

impl PassiveReply {
    /// Parses a hook's answer: `Ok(None)` means "no reply".
    pub fn parse_answer(body: &[u8]) -> Result<Option<Self>, ReplyError> {
        if body.len() > MAX_ANSWER_BYTES {
            return Err(ReplyError::TooLarge);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ReplyError::Malformed(format!("not JSON ({:?})", e.classify())))?;
        match &value {
            serde_json::Value::Null => return Ok(None),
            serde_json::Value::Object(m) if m.is_empty() => return Ok(None),
            serde_json::Value::Object(_) => {}
            _ => return Err(ReplyError::Malformed("not a JSON object".into())),
        }
        let wire: Wire = serde_json::from_value(value)
            .map_err(|e| ReplyError::Malformed(sanitise(&e.to_string())))?;
        Ok(Some(match wire {
            Wire::None => return Ok(None),
            Wire::Text { content } => PassiveReply::Text {
                content: text("content", content, MAX_TEXT_BYTES)?,
            },
            Wire::Image { media_id: m } => PassiveReply::Image {
                media_id: media_id("media_id", m)?,
            },
            Wire::Voice { media_id: m } => PassiveReply::Voice {
                media_id: media_id("media_id", m)?,
            },
            Wire::Video {
                media_id: m,
                title,
                description,
            } => PassiveReply::Video {
                media_id: media_id("media_id", m)?,
                title: optional("title", title, MAX_TITLE_BYTES)?,
                description: optional("description", description, MAX_DESCRIPTION_BYTES)?,
            },
            Wire::Music {
                thumb_media_id,
                title,
                description,
                music_url,
                hq_music_url,
            } => PassiveReply::Music {
                thumb_media_id: media_id("thumb_media_id", thumb_media_id)?,
                title: optional("title", title, MAX_TITLE_BYTES)?,
                description: optional("description", description, MAX_DESCRIPTION_BYTES)?,
                music_url: url("music_url", music_url)?,
                hq_music_url: url("hq_music_url", hq_music_url)?,
            },
            Wire::News { articles } => {
                if articles.is_empty() || articles.len() > MAX_ARTICLES {
                    return Err(ReplyError::Invalid {
                        field: "articles",
                        why: "must hold 1 to 8 articles",
                    });
                }
                PassiveReply::News {
                    articles: articles
                        .into_iter()
                        .map(|a| {
                            Ok(Article {
                                title: text("title", a.title, MAX_TITLE_BYTES)?,
                                description: optional(
                                    "description",
                                    a.description,
                                    MAX_DESCRIPTION_BYTES,
                                )?,
                                pic_url: url("pic_url", a.pic_url)?,
                                url: url("url", a.url)?,
                            })
                        })
                        .collect::<Result<_, ReplyError>>()?,
                }
            }
            Wire::TransferCustomerService { kf_account } => {
                let kf_account = optional("kf_account", kf_account, MAX_MEDIA_ID_BYTES)?;
                if kf_account.as_deref().is_some_and(|k| !k.contains('@')) {
                    return Err(ReplyError::Invalid {
                        field: "kf_account",
                        why: "must be account@gh_id",
                    });
                }
                PassiveReply::TransferCustomerService { kf_account }
            }
        }))
    }

    /// `MsgType` of the reply.
    pub fn msg_type(&self) -> &'static str {
        match self {
            PassiveReply::Text { .. } => "text",
            PassiveReply::Image { .. } => "image",
            PassiveReply::Voice { .. } => "voice",
            PassiveReply::Video { .. } => "video",
            PassiveReply::Music { .. } => "music",
            PassiveReply::News { .. } => "news",
            PassiveReply::TransferCustomerService { .. } => "transfer_customer_service",
        }
    }

    /// WeChat's reply XML, to the user `to_openid` from the account `from_gh_id`.
    pub fn render(&self, to_openid: &str, from_gh_id: &str, create_time: i64) -> String {
        let mut out = format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType>{}</MsgType>",
            cdata(to_openid),
            cdata(from_gh_id),
            cdata(self.msg_type())
        );
        let element = |out: &mut String, name: &str, value: &str| {
            out.push_str(&format!("<{name}>{}</{name}>", cdata(value)));
        };
        let optional = |out: &mut String, name: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push_str(&format!("<{name}>{}</{name}>", cdata(v)));
            }
        };
        match self {
            PassiveReply::Text { content } => element(&mut out, "Content", content),
            PassiveReply::Image { media_id } => {
                out.push_str("<Image>");
                element(&mut out, "MediaId", media_id);
                out.push_str("</Image>");
            }
            PassiveReply::Voice { media_id } => {
                out.push_str("<Voice>");
                element(&mut out, "MediaId", media_id);
                out.push_str("</Voice>");
            }
            PassiveReply::Video {
                media_id,
                title,
                description,
            } => {
                out.push_str("<Video>");
                element(&mut out, "MediaId", media_id);
                optional(&mut out, "Title", title);
                optional(&mut out, "Description", description);
                out.push_str("</Video>");
            }
            PassiveReply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                out.push_str("<Music>");
                optional(&mut out, "Title", title);
                optional(&mut out, "Description", description);
                optional(&mut out, "MusicUrl", music_url);
                optional(&mut out, "HQMusicUrl", hq_music_url);
                element(&mut out, "ThumbMediaId", thumb_media_id);
                out.push_str("</Music>");
            }
            PassiveReply::News { articles } => {
                out.push_str(&format!(
                    "<ArticleCount>{}</ArticleCount><Articles>",
                    articles.len()
                ));
                for a in articles {
                    out.push_str("<item>");
                    element(&mut out, "Title", &a.title);
                    optional(&mut out, "Description", &a.description);
                    optional(&mut out, "PicUrl", &a.pic_url);
                    optional(&mut out, "Url", &a.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
            PassiveReply::TransferCustomerService { kf_account } => {
                if let Some(k) = kf_account {
                    out.push_str("<TransInfo>");
                    element(&mut out, "KfAccount", k);
                    out.push_str("</TransInfo>");
                }
            }
        }
        out.push_str("</xml>");
        out
    }
}

/// serde's messages name the offending field or type; they never quote values, but they are
/// bounded anyway before they reach a log line.
fn sanitise(message: &str) -> String {
    message.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    fn parse(json: &str) -> Result<Option<PassiveReply>, ReplyError> {
        PassiveReply::parse_answer(json.as_bytes())
    }

    #[test]
    fn no_reply_forms() {
        for none in ["", "  \n", "null", "{}", r#"{"type":"none"}"#] {
            assert_eq!(parse(none).unwrap(), None, "{none:?}");
        }
    }

    #[test]
    fn every_type_parses_and_renders() {
        let cases = [
            r#"{"type":"text","content":"hello ]]> 你好"}"#,
            r#"{"type":"image","media_id":"MEDIA_1"}"#,
            r#"{"type":"voice","media_id":"MEDIA_2"}"#,
            r#"{"type":"video","media_id":"MEDIA_3","title":"t","description":"d"}"#,
            r#"{"type":"music","thumb_media_id":"THUMB","title":"song","music_url":"https://a.example/m.mp3","hq_music_url":"https://a.example/hq.mp3"}"#,
            r#"{"type":"news","articles":[{"title":"A","description":"d","pic_url":"https://a.example/p.jpg","url":"https://a.example/"}]}"#,
            r#"{"type":"transfer_customer_service","kf_account":"kf2001@gh_1"}"#,
            r#"{"type":"transfer_customer_service"}"#,
        ];
        for json in cases {
            let reply = parse(json).unwrap().unwrap();
            let xml_text = reply.render("o_user", "gh_1", 1_763_856_000);
            let f = xml::fields(&xml_text).unwrap();
            assert_eq!(f.get("MsgType"), Some(reply.msg_type()), "{json}");
            assert_eq!(f.get("ToUserName"), Some("o_user"));
            assert_eq!(f.get("FromUserName"), Some("gh_1"));
            assert_eq!(f.get("CreateTime"), Some("1763856000"));
        }
        let text = parse(cases[0]).unwrap().unwrap().render("o", "gh", 1);
        assert_eq!(
            xml::fields(&text).unwrap().get("Content"),
            Some("hello ]]> 你好")
        );
        let news = parse(cases[5]).unwrap().unwrap().render("o", "gh", 1);
        let f = xml::fields(&news).unwrap();
        assert_eq!(f.get("ArticleCount"), Some("1"));
        assert!(news.contains("<Articles><item><Title><![CDATA[A]]></Title>"));
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            "not json",
            "[1]",
            "\"text\"",
            r#"{"type":"text"}"#,
            r#"{"type":"text","content":""}"#,
            r#"{"type":"text","content":"   "}"#,
            r#"{"type":"text","content":5}"#,
            r#"{"type":"text","content":"a","extra":1}"#,
            r#"{"type":"sticker","media_id":"x"}"#,
            r#"{"content":"no type"}"#,
            r#"{"type":"image","media_id":"has space"}"#,
            r#"{"type":"news","articles":[]}"#,
            r#"{"type":"news","articles":[{"title":"a","url":"javascript:alert(1)"}]}"#,
            r#"{"type":"news","articles":[{"title":"a","bogus":1}]}"#,
            r#"{"type":"transfer_customer_service","kf_account":"no-at-sign"}"#,
            "{\"type\":\"text\",\"content\":\"bell \\u0007\"}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let nine = format!(
            r#"{{"type":"news","articles":[{}]}}"#,
            [r#"{"title":"a"}"#; 9].join(",")
        );
        assert!(parse(&nine).is_err());
        let long = format!(
            r#"{{"type":"text","content":"{}"}}"#,
            "x".repeat(MAX_TEXT_BYTES + 1)
        );
        assert!(matches!(
            parse(&long),
            Err(ReplyError::Invalid {
                field: "content",
                ..
            })
        ));
        let huge = format!(
            r#"{{"type":"text","content":"{}"}}"#,
            "x".repeat(MAX_ANSWER_BYTES)
        );
        assert_eq!(parse(&huge), Err(ReplyError::TooLarge));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..300))| {
            let _ = PassiveReply::parse_answer(&bytes);
        });
    }
}
