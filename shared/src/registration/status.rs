//! What WeChat's `status` of a `notify_third_fasteregister` push means.

/// The meaning of a fast-registration `status` (0 is success).
pub fn status_meaning(status: i64) -> &'static str {
    match status {
        0 => "registered",
        -1 => "the company name and the legal person's name do not match",
        100001 => "the legal person did not confirm within 24 h (ID check not done)",
        100002 => "the legal person did not confirm within 24 h (face check not done)",
        100003 => "the legal person did not confirm within 24 h",
        101 => "the company is deregistered",
        102 => "the company was not found, or the registry is not updated yet",
        103 => "the legal representative's name does not match",
        104 => "the legal representative's ID number does not match",
        105 => "the ID is not in the registry yet (retry in 5 to 15 working days)",
        1000 => "the company or legal representative data do not match",
        1001 => "the subject reached its limit of mini programs",
        1002 => "the subject is blacklisted",
        1003 => "the admin reached their limit of bound accounts",
        1004 => "the admin is blacklisted",
        1005 => "the admin's phone number reached its limit",
        1006 => "the admin's phone number is blacklisted",
        1007 => "the admin's ID card reached its limit",
        1008 => "the admin's ID card is blacklisted",
        _ => "unknown status (not in WeChat's table)",
    }
}

/// Statuses that mean the 24 h passed without a confirmation.
pub fn is_timeout(status: i64) -> bool {
    matches!(status, 100001..=100003)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_is_explained() {
        for s in [-1, 101, 102, 103, 104, 105, 100001, 100002, 100003]
            .into_iter()
            .chain(1000..=1008)
        {
            assert!(!status_meaning(s).starts_with("unknown"), "{s}");
        }
        assert!(status_meaning(7).starts_with("unknown"));
        assert!(is_timeout(100003) && !is_timeout(103));
    }
}
