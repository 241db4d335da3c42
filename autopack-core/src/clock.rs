//! Time as an injectable dependency, and the timestamp format of the artefacts.
//!
//! Nothing in the library reads the system clock directly: code that needs "now" takes a
//! [`Clock`] (or a `now` argument), so that aging and durations are testable with a
//! [`ManualClock`] and no sleeping.
//!
//! Timestamps are written as UTC RFC 3339 with microseconds and a `Z`
//! ([`timestamp::format_utc`]); readers also accept any RFC 3339 offset and the first
//! implementation's naive ISO form (`2025-11-23T11:16:17.067335`, taken as UTC)
//! ([`timestamp::parse_timestamp`], [`timestamp::serde_utc`]).
//!
//! ```
//! use autopack_core::clock::{Clock, ManualClock, timestamp};
//!
//! let start = timestamp::parse_timestamp("2025-11-23T11:16:17.067335").unwrap();
//! let clock = ManualClock::new(start);
//! clock.advance(chrono::Duration::minutes(90));
//! assert_eq!(timestamp::format_utc(clock.now()), "2025-11-23T12:46:17.067335Z");
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; shareable across threads.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Sets the time (it may go backwards).
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time by `by` (negative durations move it back) and returns the new time.
    /// Saturates at the limits of `DateTime<Utc>`.
    pub fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let moved = now
            .checked_add_signed(by)
            .unwrap_or(if by < chrono::Duration::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            });
        *now = moved;
        moved
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writing and reading timestamps.
pub mod timestamp {
    use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

    /// A string that is not a timestamp in any accepted form.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error(
        "invalid timestamp {value:?}: expected RFC 3339 (2025-11-23T11:16:17.067335Z) or naive ISO 8601 taken as UTC (2025-11-23T11:16:17.067335)"
    )]
    pub struct TimestampError {
        /// The rejected text.
        pub value: String,
    }

    /// The canonical form: RFC 3339 in UTC with microseconds and `Z`
    /// (`2025-11-23T11:16:17.067335Z`). Sub-microsecond digits are truncated.
    pub fn format_utc(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Reads RFC 3339 with any offset (converted to UTC), or a naive ISO 8601 date-time
    /// without offset (`2025-11-23T11:16:17.067335`, `T` or a space between date and time,
    /// fraction optional), taken as UTC.
    ///
    /// # Errors
    /// A [`TimestampError`] naming the text.
    pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, TimestampError> {
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(at.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(naive.and_utc());
            }
        }
        Err(TimestampError {
            value: text.to_owned(),
        })
    }

    /// Reads an RFC 3339 timestamp with any offset, converted to UTC: exactly what
    /// chrono's own `Deserialize` for `DateTime<Utc>` accepts, with the same results.
    /// The form chrono writes (`2026-01-01T00:00:01.5Z`) takes a fast path of about a
    /// twentieth of chrono's cost; anything else goes through chrono.
    ///
    /// ```
    /// use autopack_core::clock::timestamp::parse_rfc3339;
    /// let at = parse_rfc3339("2026-01-01T10:00:00.25+02:00").unwrap();
    /// assert_eq!(at, parse_rfc3339("2026-01-01T08:00:00.250Z").unwrap());
    /// assert!(parse_rfc3339("2026-02-30T00:00:00Z").is_none());
    /// ```
    pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
        match parse_canonical_utc(text) {
            Some(at) => Some(at),
            None => text
                .parse::<DateTime<chrono::FixedOffset>>()
                .ok()
                .map(|at| at.with_timezone(&Utc)),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with 1 to 9 fraction digits and no leap second;
    /// `None` sends the text to chrono, which decides.
    fn parse_canonical_utc(text: &str) -> Option<DateTime<Utc>> {
        let b = text.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let number = |digits: &[u8]| {
            digits.iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let year = number(&b[0..4])?;
        let month = number(&b[5..7])?;
        let day = number(&b[8..10])?;
        let hour = number(&b[11..13])?;
        let minute = number(&b[14..16])?;
        let second = number(&b[17..19])?;
        let mut rest = &b[19..];
        let mut nanos = 0;
        if let [b'.', fraction @ ..] = rest {
            let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = number(&fraction[..digits])? * 10u32.pow(9 - digits as u32);
            rest = &fraction[digits..];
        }
        if rest != b"Z" || second > 59 {
            return None;
        }
        let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
        let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
        Some(date.and_time(time).and_utc())
    }

    /// `#[serde(deserialize_with = "autopack_core::clock::timestamp::deserialize_rfc3339")]`
    /// for a `DateTime<Utc>` field written by chrono's own `Serialize`: reads what
    /// chrono's `Deserialize` reads ([`parse_rfc3339`]), faster.
    ///
    /// # Errors
    /// A custom error naming the text when it is not an RFC 3339 timestamp.
    pub fn deserialize_rfc3339<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        crate::json::deserialize_via_str(deserializer, "an RFC 3339 timestamp", |text| {
            parse_rfc3339(text).ok_or_else(|| {
                format!(
                    "invalid timestamp {text:?}: expected RFC 3339 (2025-11-23T11:16:17.067335Z)"
                )
            })
        })
    }

    /// `#[serde(with = "autopack_core::clock::timestamp::serde_utc")]` for a
    /// `DateTime<Utc>` field: reads every form [`parse_timestamp`] accepts and writes
    /// [`format_utc`]. For `Option<DateTime<Utc>>` use [`serde_utc::option`].
    ///
    /// On a type that also derives `schemars::JsonSchema`, add
    /// `#[schemars(with = "chrono::DateTime<chrono::Utc>")]` (or `Option<…>`): schemars 1
    /// reads a bare `serde(with)` as a type path and fails to compile without it.
    pub mod serde_utc {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the canonical form.
        ///
        /// # Errors
        /// Whatever the serializer reports.
        pub fn serialize<S: Serializer>(
            at: &DateTime<Utc>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&super::format_utc(*at))
        }

        /// Reads any accepted form.
        ///
        /// # Errors
        /// A custom error carrying the [`super::TimestampError`] message.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<DateTime<Utc>, D::Error> {
            let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
            super::parse_timestamp(&text).map_err(serde::de::Error::custom)
        }

        /// The same for `Option<DateTime<Utc>>` (`null` is `None`); pair with
        /// `#[serde(default)]` to accept a missing field.
        pub mod option {
            use chrono::{DateTime, Utc};
            use serde::{Deserialize, Deserializer, Serializer};

            /// Writes the canonical form, or `null`.
            ///
            /// # Errors
            /// Whatever the serializer reports.
            pub fn serialize<S: Serializer>(
                at: &Option<DateTime<Utc>>,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                match at {
                    Some(at) => serializer.serialize_str(&super::super::format_utc(*at)),
                    None => serializer.serialize_none(),
                }
            }

            /// Reads any accepted form, or `null`.
            ///
            /// # Errors
            /// A custom error carrying the [`super::super::TimestampError`] message.
            pub fn deserialize<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Option<DateTime<Utc>>, D::Error> {
                let text = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                match text {
                    Some(text) => super::super::parse_timestamp(&text)
                        .map(Some)
                        .map_err(serde::de::Error::custom),
                    None => Ok(None),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::timestamp::{format_utc, parse_timestamp};
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(at("2025-01-01T00:00:00Z"));
        assert_eq!(clock.now(), clock.now());
        assert_eq!(
            clock.advance(chrono::Duration::seconds(61)),
            at("2025-01-01T00:01:01Z")
        );
        clock.set(at("2024-06-01T12:00:00+02:00"));
        assert_eq!(format_utc(clock.now()), "2024-06-01T10:00:00.000000Z");
        clock.advance(chrono::Duration::hours(-1));
        assert_eq!(clock.now(), at("2024-06-01T09:00:00Z"));
        assert_eq!(
            clock.advance(chrono::Duration::MAX),
            DateTime::<Utc>::MAX_UTC
        );
    }

    mod rfc3339 {
        use super::super::timestamp::parse_rfc3339;
        use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
        use proptest::prelude::*;

        fn chrono_reads(text: &str) -> Option<DateTime<Utc>> {
            serde_json::from_value::<DateTime<Utc>>(serde_json::Value::String(text.into())).ok()
        }

        #[test]
        fn edge_cases_agree_with_chrono() {
            for text in [
                "2026-01-01T00:00:01Z",
                "2026-01-01T00:00:01.5Z",
                "2026-01-01T00:00:01.123456789Z",
                "2026-01-01T00:00:01.1234567891Z",
                "2026-01-01T00:00:01.Z",
                "2024-02-29T23:59:59Z",
                "2023-02-29T23:59:59Z",
                "2016-12-31T23:59:60Z",
                "2016-12-31T23:59:60.5Z",
                "0000-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999999Z",
                "2026-13-01T00:00:00Z",
                "2026-01-01T24:00:00Z",
                "2026-01-01t00:00:00z",
                "2026-01-01 00:00:00Z",
                "2026-01-01T00:00:00+01:00",
                "2026-01-01T00:00:00-00:00",
                "2026-01-01T00:00:00",
                "2026-01-01T00:00:00ZZ",
                "+2026-01-01T00:00:00Z",
                "２026-01-01T00:00:00Z",
                "",
            ] {
                assert_eq!(parse_rfc3339(text), chrono_reads(text), "{text:?}");
            }
        }

        proptest! {
            #[test]
            fn what_chrono_writes_reads_back_exactly(
                secs in -62_135_596_800i64..253_402_300_799,
                nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
                offset in -86_399i32..86_399,
            ) {
                let at = Utc.timestamp_opt(secs, nanos).single().unwrap();
                let written = serde_json::to_value(at).unwrap();
                prop_assert_eq!(parse_rfc3339(written.as_str().unwrap()), Some(at));
                let zoned = at.with_timezone(&FixedOffset::east_opt(offset).unwrap());
                for format in [SecondsFormat::Secs, SecondsFormat::Millis, SecondsFormat::AutoSi, SecondsFormat::Nanos] {
                    for z in [true, false] {
                        let text = at.to_rfc3339_opts(format, z);
                        prop_assert_eq!(parse_rfc3339(&text), chrono_reads(&text));
                        let text = zoned.to_rfc3339_opts(format, z);
                        prop_assert_eq!(parse_rfc3339(&text), chrono_reads(&text));
                    }
                }
            }

            #[test]
            fn any_text_is_read_as_chrono_reads_it(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?(Z|z|[+-][0-9]{2}:[0-9]{2})?") {
                prop_assert_eq!(parse_rfc3339(&text), chrono_reads(&text));
            }
        }
    }

    #[test]
    fn clocks_work_behind_pointers() {
        let shared: Arc<dyn Clock> = Arc::new(ManualClock::new(at("2025-01-01T00:00:00Z")));
        assert_eq!(shared.now(), at("2025-01-01T00:00:00Z"));
        let boxed: Box<dyn Clock> = Box::new(SystemClock);
        assert!(boxed.now() > at("2020-01-01T00:00:00Z"));
        fn takes(clock: impl Clock) -> DateTime<Utc> {
            clock.now()
        }
        let manual = ManualClock::new(at("2025-01-01T00:00:00Z"));
        assert_eq!(takes(&manual), at("2025-01-01T00:00:00Z"));
    }
}
