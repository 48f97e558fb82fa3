//! What `POST /fast-registrations` accepts, checked before any write or WeChat call.

/// The unified social credit code's characters (GB 32100-2015): digits and the capitals but
/// I, O, Z, S, V; a character's value is its index here.
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weight of position i (1-based) is 3^(i-1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("kind must be \"enterprise\" (the default) or \"official_account\"")]
    Kind,
    #[error("name is required: the company's registered name, 1 to 100 characters")]
    Name,
    #[error(
        "code must be the 18-character unified social credit code (digits and capitals but I, O, Z, S, V) with a valid check character"
    )]
    CreditCode,
    #[error("component_phone must be a mainland mobile number: 11 digits starting with 1")]
    Phone,
    #[error("customer_ref is required: 1 to 128 characters, no control characters")]
    CustomerRef,
    #[error(
        "oa_appid is required for kind official_account: \"wx\" and 16 lowercase letters or digits"
    )]
    OaAppid,
    #[error("return_to must be an http(s) URL under one of the deployment's allowed return URLs")]
    ReturnTo,
}

/// The check character of the first 17 characters, or `None` if one is outside the charset.
fn check_char(first17: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        let v = CHARSET.iter().position(|x| x == c)?;
        sum += u32::try_from(v).ok()? * w;
    }
    let check = (31 - sum % 31) % 31;
    CHARSET.get(usize::try_from(check).ok()?).copied()
}

/// A unified social credit code: trimmed, upper-cased, 18 characters of the charset, positions
/// 3–8 (the administrative division) digits, and the check character right.
pub fn check_credit_code(code: Option<&str>) -> Result<String, RegistrationError> {
    let code = code
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let b = code.as_bytes();
    let (Some(first17), Some(&last), Some(division)) = (b.get(..17), b.get(17), b.get(2..8)) else {
        return Err(RegistrationError::CreditCode);
    };
    if b.len() != 18 || !division.iter().all(u8::is_ascii_digit) {
        return Err(RegistrationError::CreditCode);
    }
    match check_char(first17) {
        Some(c) if c == last => Ok(code),
        _ => Err(RegistrationError::CreditCode),
    }
}

/// A mainland mobile number (`+86` / `86` prefix and spaces or dashes dropped).
pub fn check_phone(phone: Option<&str>) -> Result<String, RegistrationError> {
    let digits: String = phone
        .unwrap_or_default()
        .trim()
        .trim_start_matches('+')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let digits = match digits.strip_prefix("86") {
        Some(rest) if rest.len() == 11 => rest.to_string(),
        _ => digits,
    };
    let b = digits.as_bytes();
    let ok = b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b.first() == Some(&b'1')
        && b.get(1).is_some_and(|d| (b'3'..=b'9').contains(d));
    if ok {
        Ok(digits)
    } else {
        Err(RegistrationError::Phone)
    }
}

/// A company name: 1 to 100 characters, no control characters.
pub fn check_name(name: Option<&str>) -> Result<String, RegistrationError> {
    match name.map(str::trim) {
        Some(n)
            if !n.is_empty() && n.chars().count() <= 100 && !n.chars().any(char::is_control) =>
        {
            Ok(n.to_string())
        }
        _ => Err(RegistrationError::Name),
    }
}

/// Appends the check character to 17 characters (for tests and the sandbox's fixtures).
pub fn with_check_char(first17: &str) -> Option<String> {
    let c = check_char(first17.as_bytes().get(..17)?)?;
    (first17.len() == 17).then(|| format!("{first17}{}", char::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_credit_codes_pass() {
        // Codes printed on public business licences (and the GB 32100-2015 annex example).
        for code in [
            "91350100M000100Y43",
            "91440300708461136T",
            "91110000802100433B",
        ] {
            assert_eq!(check_credit_code(Some(code)).as_deref(), Ok(code), "{code}");
        }
        assert_eq!(
            check_credit_code(Some(" 91350100m000100y43 ")).as_deref(),
            Ok("91350100M000100Y43")
        );
    }

    #[test]
    fn bad_credit_codes_fail() {
        for code in [
            "",
            "91350100M000100Y4",   // 17
            "91350100M000100Y433", // 19
            "91350100M000100Y44",  // check character
            "91350100M000100I43",  // I is not in the charset
            "91A50100M000100Y43",  // division must be digits
            "９1350100M000100Y43", // non-ASCII
        ] {
            assert_eq!(
                check_credit_code(Some(code)),
                Err(RegistrationError::CreditCode),
                "{code}"
            );
        }
        assert_eq!(check_credit_code(None), Err(RegistrationError::CreditCode));
        assert_eq!(
            with_check_char("91350100M000100Y4").as_deref(),
            Some("91350100M000100Y43")
        );
    }

    #[test]
    fn phones_and_names() {
        assert_eq!(
            check_phone(Some("13800138000")).as_deref(),
            Ok("13800138000")
        );
        assert_eq!(
            check_phone(Some("+86 138-0013-8000")).as_deref(),
            Ok("13800138000")
        );
        for p in [
            "",
            "1380013800",
            "23800138000",
            "12800138000",
            "1380013800x",
        ] {
            assert_eq!(check_phone(Some(p)), Err(RegistrationError::Phone), "{p}");
        }
        assert_eq!(
            check_name(Some(" 腾讯科技（深圳）有限公司 ")).as_deref(),
            Ok("腾讯科技（深圳）有限公司")
        );
        assert_eq!(check_name(Some("a\nb")), Err(RegistrationError::Name));
        assert_eq!(
            check_name(Some(&"x".repeat(101))),
            Err(RegistrationError::Name)
        );
    }
}
