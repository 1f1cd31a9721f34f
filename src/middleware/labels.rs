//! The `method` and `status` label values: `&'static str`s from fixed sets, so labelling a
//! request never allocates and a client can never mint a new series.

use http::{Method, StatusCode};

/// The `status` label of a request whose inner service returned an error (no response).
pub(super) const ERROR_STATUS: &str = "error";
/// The `method` label of a request whose method is not one of the nine standard ones.
pub(super) const OTHER_METHOD: &str = "other";

/// The nine standard methods label as themselves; anything else (extension methods are
/// client-chosen, so unbounded) is `other`.
pub(super) fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => OTHER_METHOD,
    }
}

/// The three ASCII digits of every status code `http` allows (100 to 999), back to back,
/// so each code's label is a `&'static str` slice of it.
static STATUS_DIGITS: [u8; 2700] = status_digits();

const fn status_digits() -> [u8; 2700] {
    let mut digits = [0u8; 2700];
    let mut i = 0;
    let mut hundreds = 1;
    while hundreds <= 9 {
        let mut tens = 0;
        while tens <= 9 {
            let mut ones = 0;
            while ones <= 9 {
                digits[i] = b'0' + hundreds;
                digits[i + 1] = b'0' + tens;
                digits[i + 2] = b'0' + ones;
                i += 3;
                ones += 1;
            }
            tens += 1;
        }
        hundreds += 1;
    }
    digits
}

pub(super) fn status_label(status: StatusCode) -> &'static str {
    usize::from(status.as_u16())
        .checked_sub(100)
        .and_then(|n| STATUS_DIGITS.get(n * 3..n * 3 + 3))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        // `http` guarantees 100..=999, so this is never used.
        .unwrap_or(ERROR_STATUS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_labels_as_its_own_three_digits() {
        for code in 100..=999u16 {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status_label(status), code.to_string());
        }
    }

    #[test]
    fn standard_methods_label_as_themselves_and_extension_methods_as_other() {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::CONNECT,
            Method::OPTIONS,
            Method::TRACE,
            Method::PATCH,
        ] {
            assert_eq!(method_label(&method), method.as_str());
        }
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_label(&purge), "other");
    }
}
