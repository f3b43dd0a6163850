//! Parsing signal names the way runc's `kill` accepts them.

use std::str::FromStr;

use nix::sys::signal::Signal;

/// Parses `KILL`, `SIGKILL`, `kill` or a number into a signal number. Like
/// runc, any integer is accepted (0 and the realtime signals included); the
/// kernel has the last word on whether it exists.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).ok().map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("hup"), Some(1));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("0"), Some(0));
        assert_eq!(parse_signal("34"), Some(34));
        assert_eq!(parse_signal("99"), Some(99));
        assert_eq!(parse_signal("FOO"), None);
        assert_eq!(parse_signal("RTMIN"), None);
        assert_eq!(parse_signal(""), None);
    }
}
