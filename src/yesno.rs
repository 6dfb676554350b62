//! Yes/no values as flags and environment variables carry them.

/// A value that is not a yes/no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a yes/no value: use 1 or 0, yes or no, true or false, on or off")]
pub struct NotYesNo(pub String);

/// Parse a yes/no value as environment variables carry it: 1/0, yes/no, true/false, on/off
/// (any case).
pub fn parse_bool(s: &str) -> Result<bool, NotYesNo> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "off" => Ok(false),
        _ => Err(NotYesNo(s.to_string())),
    }
}

/// Whether the environment variable `name` is set to a yes value (`Some(true)`), a no value
/// (`Some(false)`), or to neither or nothing (`None`).
#[must_use]
pub fn env(name: &str) -> Option<bool> {
    std::env::var(name).ok().and_then(|v| parse_bool(&v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_values_parse_in_any_case() {
        for v in ["1", "yes", "Y", "TRUE", "true", "On"] {
            assert_eq!(parse_bool(v), Ok(true), "{v}");
        }
        for v in ["0", "no", "N", "False", "OFF"] {
            assert_eq!(parse_bool(v), Ok(false), "{v}");
        }
        for v in ["", "maybe", "2", "yess"] {
            assert!(
                parse_bool(v).unwrap_err().to_string().contains("yes/no"),
                "{v}"
            );
        }
    }
}
