//! Timestamps as the backlog writes and reads them.
//!
//! Written as RFC 3339 UTC with a `Z` and as many fractional digits as needed
//! (`2025-11-23T11:16:17.067335Z`); read in that form, with any offset, or in the first
//! implementation's naive ISO form (`2025-11-23T11:16:17.067335`), which is taken as UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Formats `at` canonically.
pub(crate) fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses RFC 3339 or naive ISO (as UTC).
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

pub(crate) fn serialize<S: Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(at))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
    parse(&raw).ok_or_else(|| {
        serde::de::Error::custom(format_args!(
            "invalid timestamp {raw:?}: expected RFC 3339 (2025-11-23T11:16:17.067335Z) or naive ISO 8601 taken as UTC (2025-11-23T11:16:17.067335)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_and_writes_rfc3339() {
        let naive = parse("2025-11-23T11:16:17.067335").unwrap();
        let zoned = parse("2025-11-23T11:16:17.067335Z").unwrap();
        let offset = parse("2025-11-23T12:16:17.067335+01:00").unwrap();
        assert_eq!(naive, zoned);
        assert_eq!(naive, offset);
        assert_eq!(format(&naive), "2025-11-23T11:16:17.067335Z");
        assert_eq!(
            format(&parse("2025-11-23T11:16:17").unwrap()),
            "2025-11-23T11:16:17Z"
        );
        assert!(parse("yesterday").is_none());
        assert!(parse("2025-11-23").is_none());
    }
}
