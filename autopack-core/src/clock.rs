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
