//! Durations on the command line: a number and a unit, `500ms`, `5s`, `1.5s`, `2m`. Only the
//! parsing; what a timeout applies to is decided in `main.rs`.

use std::time::Duration;

/// Parses `<number><unit>` with unit `us`, `ms`, `s`, `m` or `h`; the number may have a
/// fraction.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let nanos_per_unit = match unit.trim() {
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "" => {
            return Err(format!(
                "`{text}` needs a unit: us, ms, s, m or h (e.g. 500ms, 5s)"
            ));
        }
        other => return Err(format!("unknown unit `{other}`: use us, ms, s, m or h")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 5s)"))?;
    let nanos = (value * nanos_per_unit).round();
    if !(0.0..=u64::MAX as f64).contains(&nanos) {
        return Err(format!("`{text}` is too long"));
    }
    // In range and whole, checked above.
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(parse("5").is_err_and(|e| e.contains("needs a unit")));
        assert!(parse("5 days").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse("ms").is_err());
        assert!(parse("1.2.3s").is_err());
    }
}
