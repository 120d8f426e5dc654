//! Business hours in the tenant's time zone, for policy rules (`in_hours`) and, later, service
//! levels. Time-zone arithmetic (DST included) is jiff's, not ours.
//!
//! ```toml
//! [hours]
//! mon = "09:00-17:30"      # each day: "HH:MM-HH:MM", several ranges comma-separated, or "closed"
//! sat = "10:00-14:00"
//! holidays = ["2026-12-25", "2026-12-26"]
//!
//! [hours.channels.sms]     # a channel with its own week and holidays (nothing inherited)
//! mon = "08:00-20:00"
//! ```
//! Days not listed are closed. With no `[hours]` section the tenant is always open.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
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
    /// `[hours.channels.<name>]`: hours for one channel; only one level deep.
    #[serde(default)]
    pub channels: BTreeMap<String, HoursConfig>,
}

/// Open ranges per weekday (0 = Monday), local times; an end of 24:00 is `Time::MAX`.
type Week = [Vec<(Time, Time)>; 7];

/// How long `next_open` and `add_open` look for an opening before deciding there is none.
const HORIZON_DAYS: u32 = 400;

/// A tenant's opening hours, checked at load.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    zone: TimeZone,
    /// `None` means always open (no `[hours]`).
    week: Option<Week>,
    holidays: Vec<Date>,
    /// Per-channel hours (same zone); empty inside a channel's own hours.
    channels: BTreeMap<String, BusinessHours>,
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

/// Epoch milliseconds as a timestamp, clamped to jiff's range (years -9999..=9999).
fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

impl BusinessHours {
    /// Always open, in `time_zone`.
    pub fn always(time_zone: &str) -> Result<Self, String> {
        Ok(BusinessHours {
            zone: TimeZone::get(time_zone).map_err(|e| format!("time zone `{time_zone}`: {e}"))?,
            week: None,
            holidays: vec![],
            channels: BTreeMap::new(),
        })
    }

    pub fn from_config(time_zone: &str, config: Option<&HoursConfig>) -> Result<Self, String> {
        let always = Self::always(time_zone)?;
        let Some(c) = config else {
            return Ok(always);
        };
        let mut hours = always.with_week(c, "[hours]")?;
        for (name, channel) in &c.channels {
            let section = format!("[hours.channels.{name}]");
            if !channel.channels.is_empty() {
                return Err(format!(
                    "{section}: a channel's hours cannot have `channels` of their own"
                ));
            }
            let built = hours.with_week(channel, &section)?;
            hours.channels.insert(name.clone(), built);
        }
        Ok(hours)
    }

    /// `config`'s week and holidays in this zone, without channels; errors start with `section`.
    fn with_week(&self, config: &HoursConfig, section: &str) -> Result<Self, String> {
        let c = config;
        let days = [&c.mon, &c.tue, &c.wed, &c.thu, &c.fri, &c.sat, &c.sun];
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut week: Week = Default::default();
        for (i, day) in days.iter().enumerate() {
            if let Some(text) = day {
                week[i] = parse_day(text).map_err(|e| format!("{section} {}: {e}", names[i]))?;
            }
        }
        let holidays = c
            .holidays
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|_| format!("{section} holiday `{d}` is not a date (YYYY-MM-DD)"))
            })
            .collect::<Result<_, _>>()?;
        Ok(BusinessHours {
            zone: self.zone.clone(),
            week: Some(week),
            holidays,
            channels: BTreeMap::new(),
        })
    }

    /// The hours that apply to `channel`: its own section if it has one, else the tenant's.
    pub fn for_channel(&self, channel: &str) -> &BusinessHours {
        self.channels.get(channel).unwrap_or(self)
    }

    /// True when no `[hours]` were configured (open around the clock, holidays included).
    pub fn is_always_open(&self) -> bool {
        self.week.is_none()
    }

    /// Milliseconds of open time in `[from_ms, to_ms)`; 0 if `to_ms <= from_ms`.
    pub fn open_between(&self, from_ms: i64, to_ms: i64) -> i64 {
        if to_ms <= from_ms {
            return 0;
        }
        let Some(week) = &self.week else {
            return to_ms.saturating_sub(from_ms);
        };
        if week.iter().all(Vec::is_empty) {
            return 0;
        }
        // Ranges of days after `to_ms`'s local date all start after it.
        let last = self.local_date(to_ms);
        self.days_from(week, from_ms)
            .take_while(|(date, _)| *date <= last)
            .flat_map(|(_, ranges)| ranges)
            .map(|(start, end)| end.min(to_ms).saturating_sub(start.max(from_ms)).max(0))
            .sum()
    }

    /// The instant by which `open_ms` of open time has passed, counting from `start_ms` (or from
    /// the next opening if closed then). `None` if the hours stay closed for `HORIZON_DAYS` days
    /// in a row before that. A negative `open_ms` counts as 0.
    pub fn add_open(&self, start_ms: i64, open_ms: i64) -> Option<i64> {
        let mut left = open_ms.max(0);
        let Some(week) = &self.week else {
            return start_ms.checked_add(left);
        };
        if week.iter().all(Vec::is_empty) {
            return None;
        }
        let mut closed_days = 0;
        for (_, ranges) in self.days_from(week, start_ms) {
            let mut opened = false;
            for (start, end) in ranges {
                if end <= start_ms {
                    continue;
                }
                opened = true;
                let start = start.max(start_ms);
                if left <= end - start {
                    return Some(start + left);
                }
                left -= end - start;
            }
            closed_days = if opened { 0 } else { closed_days + 1 };
            if closed_days > HORIZON_DAYS {
                return None;
            }
        }
        None
    }

    /// `at_ms` if open then, else the start of the next opening (within `HORIZON_DAYS`).
    pub fn next_open(&self, at_ms: i64) -> Option<i64> {
        self.add_open(at_ms, 0)
    }

    /// `at_ms` as the tenant reads it, e.g. `Monday 08:00 (Europe/London)`, for messages to people.
    pub fn describe(&self, at_ms: i64) -> String {
        timestamp(at_ms)
            .to_zoned(self.zone.clone())
            .strftime("%A %H:%M (%Q)")
            .to_string()
    }

    fn local_date(&self, ms: i64) -> Date {
        self.zone.to_datetime(timestamp(ms)).date()
    }

    /// The instant a local `time` on `date` names, in epoch ms; `Time::MAX` (24:00) is the next
    /// day's start. A time skipped by DST moves forward past the gap; a repeated one takes its
    /// first occurrence (jiff's "compatible" rule, as `Zoned` uses).
    fn instant(&self, date: Date, time: Time) -> Option<i64> {
        let local = if time == Time::MAX {
            DateTime::from(date.tomorrow().ok()?)
        } else {
            date.to_datetime(time)
        };
        let ts = self.zone.to_ambiguous_timestamp(local).compatible().ok()?;
        Some(ts.as_millisecond())
    }

    /// Open ranges `[start, end)` in epoch ms, day by day from the local day before `from_ms`'s
    /// (whose last range may run past midnight through a DST gap) to the end of jiff's calendar.
    /// Ranges are sorted and disjoint, so their lengths can be summed, even when a day lists
    /// overlapping ranges or DST folds make neighbours overlap.
    fn days_from<'a>(
        &'a self,
        week: &'a Week,
        from_ms: i64,
    ) -> impl Iterator<Item = (Date, Vec<(i64, i64)>)> + 'a {
        let first = self.local_date(from_ms);
        let first = first.yesterday().unwrap_or(first);
        let mut covered = i64::MIN;
        std::iter::successors(Some(first), |d| d.tomorrow().ok()).map(move |date| {
            if self.holidays.contains(&date) {
                return (date, vec![]);
            }
            let day = &week[date.weekday().to_monday_zero_offset() as usize];
            let mut ranges: Vec<(i64, i64)> = day
                .iter()
                .filter_map(|&(s, e)| Some((self.instant(date, s)?, self.instant(date, e)?)))
                .collect();
            ranges.sort_unstable();
            let mut disjoint = Vec::with_capacity(ranges.len());
            for (start, end) in ranges {
                let start = start.max(covered);
                if end > start {
                    disjoint.push((start, end));
                    covered = end;
                }
            }
            (date, disjoint)
        })
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

    const HOUR: i64 = 3_600_000;
    const MINUTE: i64 = 60_000;

    /// Mon–Fri 08:00-20:00, weekends closed, in London.
    fn weekdays_london(holidays: &[&str]) -> BusinessHours {
        let day = || Some("08:00-20:00".to_string());
        let config = HoursConfig {
            mon: day(),
            tue: day(),
            wed: day(),
            thu: day(),
            fri: day(),
            sat: Some("closed".into()),
            sun: Some("closed".into()),
            holidays: holidays.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        BusinessHours::from_config("Europe/London", Some(&config)).unwrap()
    }

    #[test]
    fn add_open_skips_the_weekend() {
        let h = weekdays_london(&[]);
        // Friday 2026-07-10 19:50 BST: 10 minutes left on Friday, 20 more from Monday 08:00.
        let friday = ms("2026-07-10T19:50:00+01:00");
        assert_eq!(
            h.add_open(friday, 30 * MINUTE),
            Some(ms("2026-07-13T08:20:00+01:00"))
        );
        // Exactly the time left on Friday ends at closing time.
        assert_eq!(
            h.add_open(friday, 10 * MINUTE),
            Some(ms("2026-07-10T20:00:00+01:00"))
        );
        // Zero: the start itself when open, else the next opening.
        let monday_10 = ms("2026-07-13T10:00:00+01:00");
        assert_eq!(h.add_open(monday_10, 0), Some(monday_10));
        assert_eq!(
            h.add_open(ms("2026-07-11T12:00:00+01:00"), 0),
            Some(ms("2026-07-13T08:00:00+01:00"))
        );
    }

    #[test]
    fn add_open_skips_a_holiday() {
        let h = weekdays_london(&["2026-07-13"]);
        assert_eq!(
            h.add_open(ms("2026-07-10T19:50:00+01:00"), 30 * MINUTE),
            Some(ms("2026-07-14T08:20:00+01:00"))
        );
        // A full day's 12 hours from Friday 08:00 also jumps the holiday Monday.
        assert_eq!(
            h.add_open(ms("2026-07-10T08:00:00+01:00"), 13 * HOUR),
            Some(ms("2026-07-14T09:00:00+01:00"))
        );
    }

    #[test]
    fn add_open_and_open_between_follow_dst() {
        // Mon–Sat 08:00-20:00; Sunday 2026-10-25 clocks go back (BST -> GMT).
        let mut config = HoursConfig {
            sat: Some("08:00-20:00".into()),
            mon: Some("08:00-20:00".into()),
            ..Default::default()
        };
        let h = BusinessHours::from_config("Europe/London", Some(&config)).unwrap();
        // Saturday 19:00 BST (18:00Z): one hour on Saturday, one from Monday 08:00 GMT.
        assert_eq!(
            h.add_open(ms("2026-10-24T18:00:00Z"), 2 * HOUR),
            Some(ms("2026-10-26T09:00:00Z"))
        );
        // From Saturday 19:00 BST to Monday 10:00 GMT: 1 h + 2 h.
        assert_eq!(
            h.open_between(ms("2026-10-24T18:00:00Z"), ms("2026-10-26T10:00:00Z")),
            3 * HOUR
        );

        // A Sunday open around the clock: 23 h when clocks go forward, 25 h when they go back.
        config.sun = Some("00:00-24:00".into());
        let h = BusinessHours::from_config("Europe/London", Some(&config)).unwrap();
        let spring = (ms("2027-03-27T12:00:00Z"), ms("2027-03-29T06:00:00Z"));
        assert_eq!(h.open_between(spring.0, spring.1), 8 * HOUR + 23 * HOUR);
        assert_eq!(
            h.open_between(ms("2027-03-28T00:00:00Z"), ms("2027-03-28T23:00:00Z")),
            23 * HOUR
        );
        let autumn = (ms("2026-10-25T00:00:00+01:00"), ms("2026-10-26T00:00:00Z"));
        assert_eq!(h.open_between(autumn.0, autumn.1), 25 * HOUR);
        // Sunday's 23 hours end at Monday 00:00 BST, which is Sunday 23:00 UTC.
        assert_eq!(
            h.add_open(ms("2027-03-28T00:00:00Z"), 23 * HOUR),
            Some(ms("2027-03-28T23:00:00Z"))
        );
    }

    #[test]
    fn open_between_counts_only_open_time() {
        let h = weekdays_london(&[]);
        // Friday 19:00 BST to Monday 09:00 BST: an hour each side of the weekend.
        let friday_19 = ms("2026-07-10T19:00:00+01:00");
        assert_eq!(
            h.open_between(friday_19, ms("2026-07-13T09:00:00+01:00")),
            2 * HOUR
        );
        // Within one day, and a span that begins before opening.
        assert_eq!(
            h.open_between(
                ms("2026-07-13T10:00:00+01:00"),
                ms("2026-07-13T12:30:00+01:00")
            ),
            150 * MINUTE
        );
        assert_eq!(
            h.open_between(
                ms("2026-07-13T07:00:00+01:00"),
                ms("2026-07-13T08:30:00+01:00")
            ),
            30 * MINUTE
        );
        // A whole week is 5 x 12 h.
        assert_eq!(
            h.open_between(friday_19, ms("2026-07-17T19:00:00+01:00")),
            60 * HOUR
        );
        assert_eq!(h.open_between(friday_19, friday_19), 0);
        assert_eq!(h.open_between(friday_19, friday_19 - HOUR), 0);
    }

    #[test]
    fn next_open_finds_the_next_opening() {
        let h = weekdays_london(&[]);
        // Saturday, and Friday's closing moment, both wait for Monday 08:00 BST.
        let monday_8 = ms("2026-07-13T08:00:00+01:00");
        assert_eq!(h.next_open(ms("2026-07-11T10:00:00+01:00")), Some(monday_8));
        assert_eq!(h.next_open(ms("2026-07-10T20:00:00+01:00")), Some(monday_8));
        let inside = ms("2026-07-13T12:34:00+01:00");
        assert_eq!(h.next_open(inside), Some(inside));

        let closed =
            BusinessHours::from_config("Europe/London", Some(&HoursConfig::default())).unwrap();
        assert!(!closed.is_always_open());
        assert_eq!(closed.next_open(inside), None);
        assert_eq!(closed.add_open(inside, HOUR), None);
        assert_eq!(closed.open_between(inside, inside + 100 * HOUR), 0);
    }

    #[test]
    fn always_open_is_plain_arithmetic() {
        let h = BusinessHours::from_config("Europe/London", None).unwrap();
        assert!(h.is_always_open());
        let t = ms("2027-03-28T00:30:00Z");
        assert_eq!(h.open_between(t, t + 5 * HOUR), 5 * HOUR);
        assert_eq!(h.add_open(t, 5 * HOUR), Some(t + 5 * HOUR));
        assert_eq!(h.next_open(t), Some(t));
        assert!(std::ptr::eq(h.for_channel("sms"), &h));
    }

    #[test]
    fn channels_have_their_own_hours() {
        let config: HoursConfig = toml::from_str(
            r#"
            mon = "09:00-17:00"
            [channels.sms]
            mon = "08:00-20:00"
            "#,
        )
        .unwrap();
        let h = BusinessHours::from_config("Europe/London", Some(&config)).unwrap();
        let monday_19 = ms("2026-07-13T19:00:00+01:00");
        assert!(!h.at(monday_19).open);
        assert!(h.for_channel("sms").at(monday_19).open);
        assert!(!h.for_channel("email").at(monday_19).open);
        assert_eq!(
            h.for_channel("sms").open_between(
                ms("2026-07-13T00:00:00+01:00"),
                ms("2026-07-14T00:00:00+01:00")
            ),
            12 * HOUR
        );
        assert_eq!(
            h.for_channel("email").next_open(monday_19),
            Some(ms("2026-07-20T09:00:00+01:00"))
        );
    }

    #[test]
    fn bad_channel_hours_name_the_channel() {
        let err = |toml_text: &str| {
            let config: HoursConfig = toml::from_str(toml_text).unwrap();
            BusinessHours::from_config("UTC", Some(&config)).unwrap_err()
        };
        let nested = err("[channels.sms]\nmon = \"09:00-17:00\"\n[channels.sms.channels.x]\n");
        assert!(nested.starts_with("[hours.channels.sms]"), "{nested}");
        assert!(nested.contains("channels"), "{nested}");
        assert_eq!(
            err("[channels.sms]\nmon = \"9-5\"\n"),
            "[hours.channels.sms] mon: `9` is not a time (HH:MM)"
        );
        let holiday = err("[channels.sms]\nholidays = [\"Christmas\"]\n");
        assert!(
            holiday.starts_with("[hours.channels.sms] holiday"),
            "{holiday}"
        );
    }

    #[test]
    fn describe_names_weekday_time_and_zone() {
        let h = weekdays_london(&[]);
        assert_eq!(
            h.describe(ms("2026-07-13T07:00:00Z")),
            "Monday 08:00 (Europe/London)"
        );
        assert_eq!(
            h.describe(ms("2026-01-10T23:59:00Z")),
            "Saturday 23:59 (Europe/London)"
        );
    }
}
