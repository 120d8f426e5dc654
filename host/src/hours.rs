//! Business hours in the tenant's time zone, for policy rules (`in_hours`) and, later, service
//! levels. Time-zone arithmetic (DST included) is jiff's, not ours.
//!
//! ```toml
//! [hours]
//! mon = "09:00-17:30"      # each day: "HH:MM-HH:MM", several ranges comma-separated, or "closed"
//! sat = "10:00-14:00"
//! holidays = ["2026-12-25", "2026-12-26"]
//! ```
//! Days not listed are closed. With no `[hours]` section the tenant is always open.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::Deserialize;

/// The `[hours]` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    pub mon: Option<String>,
    pub tue: Option<String>,
    pub wed: Option<String>,
    pub thu: Option<String>,
    pub fri: Option<String>,
    pub sat: Option<String>,
    pub sun: Option<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// A tenant's opening hours, checked at load.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    zone: TimeZone,
    /// Per weekday (0 = Monday): open ranges; `None` means always open (no `[hours]`).
    week: Option<[Vec<(Time, Time)>; 7]>,
    holidays: Vec<Date>,
}

/// Where a moment falls in the tenant's week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMoment {
    pub open: bool,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: i64,
    pub hour: i64,
}

fn parse_day(text: &str) -> Result<Vec<(Time, Time)>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") || text.is_empty() {
        return Ok(vec![]);
    }
    text.split(',')
        .map(|range| {
            let (a, b) = range
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("`{range}` is not HH:MM-HH:MM"))?;
            let parse = |t: &str| {
                let t = t.trim();
                if t == "24:00" {
                    return Ok(Time::MAX);
                }
                Time::strptime("%H:%M", t).map_err(|_| format!("`{t}` is not a time (HH:MM)"))
            };
            let (start, end) = (parse(a)?, parse(b)?);
            if end <= start {
                return Err(format!("`{range}` ends before it starts"));
            }
            Ok((start, end))
        })
        .collect()
}

impl BusinessHours {
    /// Always open, in `time_zone`.
    pub fn always(time_zone: &str) -> Result<Self, String> {
        Ok(BusinessHours {
            zone: TimeZone::get(time_zone).map_err(|e| format!("time zone `{time_zone}`: {e}"))?,
            week: None,
            holidays: vec![],
        })
    }

    pub fn from_config(time_zone: &str, config: Option<&HoursConfig>) -> Result<Self, String> {
        let mut hours = Self::always(time_zone)?;
        let Some(c) = config else {
            return Ok(hours);
        };
        let days = [&c.mon, &c.tue, &c.wed, &c.thu, &c.fri, &c.sat, &c.sun];
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut week: [Vec<(Time, Time)>; 7] = Default::default();
        for (i, day) in days.iter().enumerate() {
            if let Some(text) = day {
                week[i] = parse_day(text).map_err(|e| format!("[hours] {}: {e}", names[i]))?;
            }
        }
        hours.week = Some(week);
        hours.holidays = c
            .holidays
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|_| format!("[hours] holiday `{d}` is not a date (YYYY-MM-DD)"))
            })
            .collect::<Result<_, _>>()?;
        Ok(hours)
    }

    /// Where `at_ms` (epoch milliseconds) falls in the tenant's week.
    pub fn at(&self, at_ms: i64) -> LocalMoment {
        let ts = Timestamp::from_millisecond(at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let local = ts.to_zoned(self.zone.clone());
        let weekday = local.weekday().to_monday_one_offset() as i64;
        let hour = local.hour() as i64;
        let open = match &self.week {
            None => true,
            Some(week) => {
                !self.holidays.contains(&local.date())
                    && week[(weekday - 1) as usize]
                        .iter()
                        .any(|(s, e)| local.time() >= *s && local.time() < *e)
            }
        };
        LocalMoment {
            open,
            weekday,
            hour,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn opening_hours_follow_the_tenant_zone_and_dst() {
        let config = HoursConfig {
            mon: Some("09:00-17:00".into()),
            sat: Some("closed".into()),
            holidays: vec!["2026-12-28".into()],
            ..Default::default()
        };
        let h = BusinessHours::from_config("Europe/London", Some(&config)).unwrap();
        // Monday 2026-07-06 08:30 UTC is 09:30 in London (BST): open.
        let m = h.at(ms("2026-07-06T08:30:00Z"));
        assert_eq!((m.open, m.weekday, m.hour), (true, 1, 9));
        // Monday 2026-01-05 08:30 UTC is 08:30 in London (GMT): closed.
        assert!(!h.at(ms("2026-01-05T08:30:00Z")).open);
        // 17:00 is closing time; Saturday closed; Tuesday not listed; a Monday holiday.
        assert!(!h.at(ms("2026-01-05T17:00:00Z")).open);
        assert!(!h.at(ms("2026-07-11T10:00:00Z")).open);
        assert!(!h.at(ms("2026-07-07T10:00:00Z")).open);
        assert!(!h.at(ms("2026-12-28T10:00:00Z")).open);
    }

    #[test]
    fn bad_hours_are_clear_errors() {
        let bad = |mon: &str| {
            let c = HoursConfig {
                mon: Some(mon.into()),
                ..Default::default()
            };
            BusinessHours::from_config("UTC", Some(&c)).unwrap_err()
        };
        assert!(bad("9-5").contains("not a time"));
        assert!(bad("17:00-09:00").contains("ends before"));
        assert!(
            BusinessHours::always("Mars/Olympus")
                .unwrap_err()
                .contains("Mars/Olympus")
        );
        assert!(BusinessHours::always("UTC").unwrap().at(0).open);
    }
}
