//! `Appid`: an account id as WeChat issues them (`wx` and 16 characters), parsed once at the edge.

use std::fmt;
use std::ops::Deref;

/// A validated appid. WeChat's are `wx` + 16 hex digits in practice; lowercase alphanumerics are
/// accepted to stay on the safe side.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Appid(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an appid is \"wx\" followed by 16 lowercase letters or digits")]
pub struct InvalidAppid;

impl Appid {
    /// Parses an appid, exactly (callers trim where a field allows surrounding spaces).
    pub fn parse(s: &str) -> Result<Self, InvalidAppid> {
        if is_valid(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidAppid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether `s` is an appid, exactly (no trimming).
pub fn is_valid(s: &str) -> bool {
    s.strip_prefix("wx").is_some_and(|rest| {
        rest.len() == 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

impl Deref for Appid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Appid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Appid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Appid> for String {
    fn from(a: Appid) -> String {
        a.0
    }
}

impl TryFrom<String> for Appid {
    type Error = InvalidAppid;
    fn try_from(s: String) -> Result<Self, InvalidAppid> {
        if is_valid(&s) {
            Ok(Self(s))
        } else {
            Err(InvalidAppid)
        }
    }
}

impl std::str::FromStr for Appid {
    type Err = InvalidAppid;
    fn from_str(s: &str) -> Result<Self, InvalidAppid> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once() {
        assert_eq!(
            Appid::parse("wx570bc396a51b8ff8").map(String::from),
            Ok("wx570bc396a51b8ff8".to_string())
        );
        for bad in [
            "",
            " wx570bc396a51b8ff8",
            "wx",
            "wx570bc396a51b8ff",
            "wx570bc396a51b8ff8a",
            "WX570bc396a51b8ff8",
            "wx570BC396a51b8ff8",
            "wx570bc396a51b8f/8",
        ] {
            assert_eq!(Appid::parse(bad), Err(InvalidAppid), "{bad:?}");
        }
    }
}
