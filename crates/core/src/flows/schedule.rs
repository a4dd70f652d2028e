//! When a `Recurrence` trigger fires, as Logic Apps counts it: occurrences are the start plus
//! whole multiples of `interval × frequency` (months clamped to the month's end), the start being
//! `startTime` or, without it, the moment the flow was turned on. For `Day` and `Week` a
//! `schedule` picks the hours, minutes and (`Week`) days within each counted day or week. Pure:
//! the caller gives the instants. Times are UTC; other time zones are refused (no maintained
//! crate in the workspace maps Windows time zone names).

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

use super::datetime::parse_timestamp;
use super::error::{DefinitionError, JsonPath};
use super::trigger::{Frequency, Recurrence};

/// Windows time zone names that are UTC (`UTC` is the Windows id, the other its display name).
const UTC_NAMES: [&str; 2] = ["UTC", "Coordinated Universal Time"];

/// Why a recurrence cannot be scheduled: the recurrence field at fault and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError {
    /// The field under `recurrence` (`timeZone`, `schedule.hours`, …).
    pub field: &'static str,
    pub message: String,
}

impl ScheduleError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// As a definition error at `triggers.<trigger>.recurrence.<field>`.
    pub fn in_trigger(&self, trigger: &str) -> DefinitionError {
        let mut path = JsonPath::root()
            .key("triggers")
            .key(trigger)
            .key("recurrence");
        for part in self.field.split('.') {
            path = path.key(part);
        }
        DefinitionError::at(&path, self.message.clone())
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recurrence.{}: {}", self.field, self.message)
    }
}

/// A recurrence made concrete: its start and the times of day it keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurrenceSchedule {
    frequency: Frequency,
    interval: i64,
    start: OffsetDateTime,
    /// `Day`/`Week` with a `schedule`: the (hour, minute) pairs of each counted day, sorted.
    times: Option<Vec<(u8, u8)>>,
    /// `Week` with a `schedule`: the days of each counted week.
    week_days: Vec<Weekday>,
}

impl RecurrenceSchedule {
    /// Check a recurrence as saving does: the time zone and where a `schedule` applies.
    pub fn check(recurrence: &Recurrence) -> Result<(), ScheduleError> {
        Self::new(recurrence, OffsetDateTime::UNIX_EPOCH).map(|_| ())
    }

    /// The schedule of `recurrence` for a flow turned on at `turned_on` (its start when there is
    /// no `startTime`; kept to the whole second so occurrences read cleanly).
    pub fn new(recurrence: &Recurrence, turned_on: OffsetDateTime) -> Result<Self, ScheduleError> {
        if let Some(zone) = &recurrence.time_zone
            && !UTC_NAMES
                .iter()
                .any(|n| n.eq_ignore_ascii_case(zone.trim()))
        {
            return Err(ScheduleError::new(
                "timeZone",
                format!(
                    "'{zone}' is not a time zone Keyway schedules in: recurrences run in UTC only. Remove 'timeZone' (or set it to 'UTC') and write startTime and the schedule's hours in UTC."
                ),
            ));
        }
        let start = match &recurrence.start_time {
            Some(text) => parse_timestamp(text).ok_or_else(|| {
                ScheduleError::new(
                    "startTime",
                    format!("'{text}' is not an ISO 8601 timestamp such as 2025-01-31T09:00:00Z"),
                )
            })?,
            None => turned_on.replace_nanosecond(0).unwrap_or(turned_on),
        };
        // Instants are stored to the microsecond: occurrences are computed at that precision.
        let start = start.to_offset(UtcOffset::UTC);
        let start = start
            .replace_microsecond(start.microsecond())
            .unwrap_or(start);
        let mut schedule = Self {
            frequency: recurrence.frequency,
            interval: i64::from(recurrence.interval.max(1)),
            start,
            times: None,
            week_days: Vec::new(),
        };
        let Some(given) = &recurrence.schedule else {
            return Ok(schedule);
        };
        let fixed = match recurrence.frequency {
            Frequency::Day | Frequency::Week => None,
            other => Some(other),
        };
        if let Some(frequency) = fixed {
            return Err(ScheduleError::new(
                "schedule",
                format!(
                    "a schedule (hours, minutes, weekDays) applies to the Day and Week frequencies, not {frequency:?}: remove it, or count in days or weeks"
                ),
            ));
        }
        if recurrence.frequency == Frequency::Day && !given.week_days.is_empty() {
            return Err(ScheduleError::new(
                "schedule.weekDays",
                "weekDays applies to the Week frequency: use frequency Week to pick days",
            ));
        }
        let sorted = |list: &[u8], default: u8| {
            let mut v = if list.is_empty() {
                vec![default]
            } else {
                list.to_vec()
            };
            v.sort_unstable();
            v.dedup();
            v
        };
        let hours = sorted(&given.hours, start.hour());
        let minutes = sorted(&given.minutes, start.minute());
        schedule.times = Some(
            hours
                .iter()
                .flat_map(|h| minutes.iter().map(move |m| (*h, *m)))
                .collect(),
        );
        if recurrence.frequency == Frequency::Week {
            schedule.week_days = if given.week_days.is_empty() {
                vec![start.weekday()]
            } else {
                given.week_days.clone()
            };
        }
        Ok(schedule)
    }

    /// The first occurrence.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The first occurrence strictly after `t` (`None` past the calendar's end).
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.times.is_some() {
            return self.scheduled_next_after(t);
        }
        if t < self.start {
            return Some(self.start);
        }
        match self.period_seconds() {
            Some(period) => {
                let k = whole_periods(t - self.start, period) + 1;
                self.start
                    .checked_add(Duration::seconds(k.checked_mul(period)?))
            }
            None => {
                let k = self.months_index(t);
                let at = self.month_occurrence(k)?;
                if at > t {
                    Some(at)
                } else {
                    self.month_occurrence(k + 1)
                }
            }
        }
    }

    /// The first occurrence at `t` or after it.
    pub fn next_at_or_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        self.next_after(t.checked_sub(Duration::nanoseconds(1))?)
    }

    /// The last occurrence at `t` or before it (`None` before the first).
    pub fn latest_at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        if t < self.start {
            return None;
        }
        if self.times.is_some() {
            return self.scheduled_latest(t);
        }
        match self.period_seconds() {
            Some(period) => {
                let k = whole_periods(t - self.start, period);
                self.start
                    .checked_add(Duration::seconds(k.checked_mul(period)?))
            }
            None => {
                let k = self.months_index(t);
                match self.month_occurrence(k) {
                    Some(at) if at <= t => Some(at),
                    _ => self.month_occurrence(k - 1),
                }
            }
        }
    }

    fn period_seconds(&self) -> Option<i64> {
        let unit = match self.frequency {
            Frequency::Second => 1,
            Frequency::Minute => 60,
            Frequency::Hour => 3_600,
            Frequency::Day => 86_400,
            Frequency::Week => 7 * 86_400,
            Frequency::Month => return None,
        };
        Some(unit * self.interval)
    }

    /// The index `k` of the occurrence in `t`'s month or the last counted month before it.
    fn months_index(&self, t: OffsetDateTime) -> i64 {
        let months = |d: OffsetDateTime| i64::from(d.year()) * 12 + i64::from(u8::from(d.month()));
        (months(t) - months(self.start)).div_euclid(self.interval)
    }

    /// The start moved `k × interval` months, its day clamped to the month's last.
    fn month_occurrence(&self, k: i64) -> Option<OffsetDateTime> {
        if k < 0 {
            return None;
        }
        let index = i64::from(self.start.year()) * 12
            + i64::from(u8::from(self.start.month()) - 1)
            + k.checked_mul(self.interval)?;
        let year = i32::try_from(index.div_euclid(12)).ok()?;
        let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
        let day = self.start.day().min(month.length(year));
        let date = Date::from_calendar_date(year, month, day).ok()?;
        Some(date.with_time(self.start.time()).assume_utc())
    }

    /// Is `day` one of the counted days (every `interval` days, or the chosen week days of every
    /// `interval` weeks counted from the week, Monday first, of the start)?
    fn counted(&self, day: Date) -> bool {
        let first = self.start.date();
        let since = i64::from(day.to_julian_day() - first.to_julian_day());
        if self.frequency == Frequency::Week {
            let monday = i64::from(first.weekday().number_days_from_monday());
            let week = (since + monday).div_euclid(7);
            week >= 0 && week % self.interval == 0 && self.week_days.contains(&day.weekday())
        } else {
            since >= 0 && since % self.interval == 0
        }
    }

    /// How many days to look through: two counted periods always hold the next occurrence.
    fn horizon(&self) -> i64 {
        7 * (self.interval + 2)
    }

    fn at(day: Date, (hour, minute): (u8, u8)) -> Option<OffsetDateTime> {
        Some(
            day.with_time(Time::from_hms(hour, minute, 0).ok()?)
                .assume_utc(),
        )
    }

    fn scheduled_next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let times = self.times.as_deref().unwrap_or_default();
        let mut day = t.to_offset(UtcOffset::UTC).date().max(self.start.date());
        for _ in 0..self.horizon() {
            if self.counted(day) {
                for &time in times {
                    let at = Self::at(day, time)?;
                    if at > t && at >= self.start {
                        return Some(at);
                    }
                }
            }
            day = day.next_day()?;
        }
        None
    }

    fn scheduled_latest(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let times = self.times.as_deref().unwrap_or_default();
        let mut day = t.to_offset(UtcOffset::UTC).date();
        for _ in 0..self.horizon() {
            if day < self.start.date() {
                return None;
            }
            if self.counted(day) {
                for &time in times.iter().rev() {
                    let at = Self::at(day, time)?;
                    if at <= t && at >= self.start {
                        return Some(at);
                    }
                }
            }
            day = day.previous_day()?;
        }
        None
    }
}

/// Whole `period`s (seconds) in a non-negative span.
fn whole_periods(span: Duration, period: i64) -> i64 {
    let nanos = span.whole_nanoseconds();
    let per = i128::from(period) * 1_000_000_000;
    i64::try_from(nanos.div_euclid(per)).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::flows::trigger::Schedule;

    fn rec(frequency: Frequency, interval: u32, start: Option<&str>) -> Recurrence {
        Recurrence {
            frequency,
            interval,
            start_time: start.map(str::to_owned),
            time_zone: None,
            schedule: None,
        }
    }

    fn sched(r: &Recurrence, on: OffsetDateTime) -> RecurrenceSchedule {
        RecurrenceSchedule::new(r, on).unwrap()
    }

    fn run(s: &RecurrenceSchedule, from: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = s.next_after(t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn start_time_in_the_future_is_the_first_occurrence() {
        let s = sched(
            &rec(Frequency::Minute, 15, Some("2026-03-01T09:00:00Z")),
            datetime!(2026-02-01 00:00 UTC),
        );
        assert_eq!(
            run(&s, datetime!(2026-02-10 12:00 UTC), 3),
            [
                datetime!(2026-03-01 09:00 UTC),
                datetime!(2026-03-01 09:15 UTC),
                datetime!(2026-03-01 09:30 UTC)
            ]
        );
    }

    #[test]
    fn a_past_start_counts_whole_intervals_from_it() {
        let s = sched(
            &rec(Frequency::Hour, 5, Some("2026-01-01T00:30:00Z")),
            datetime!(2026-02-01 00:00 UTC),
        );
        // 2026-01-02 08:00 is 31.5 h after the start: the next is 35 h after it.
        assert_eq!(
            s.next_after(datetime!(2026-01-02 07:30 UTC)),
            Some(datetime!(2026-01-02 11:30 UTC))
        );
        // Strictly after: an occurrence is not its own next.
        assert_eq!(
            s.next_after(datetime!(2026-01-02 11:30 UTC)),
            Some(datetime!(2026-01-02 16:30 UTC))
        );
        assert_eq!(
            s.next_at_or_after(datetime!(2026-01-02 11:30 UTC)),
            Some(datetime!(2026-01-02 11:30 UTC))
        );
        assert_eq!(
            s.latest_at_or_before(datetime!(2026-01-02 16:29 UTC)),
            Some(datetime!(2026-01-02 11:30 UTC))
        );
        assert_eq!(s.latest_at_or_before(datetime!(2025-12-31 00:00 UTC)), None);
    }

    #[test]
    fn without_a_start_time_it_counts_from_turning_on_to_the_second() {
        let on = datetime!(2026-05-05 10:20:30.75 UTC);
        let s = sched(&rec(Frequency::Second, 10, None), on);
        assert_eq!(s.start(), datetime!(2026-05-05 10:20:30 UTC));
        assert_eq!(s.next_at_or_after(s.start()), Some(s.start()));
        assert_eq!(
            run(&s, on, 2),
            [
                datetime!(2026-05-05 10:20:40 UTC),
                datetime!(2026-05-05 10:20:50 UTC)
            ]
        );
    }

    #[test]
    fn months_clamp_to_the_month_end_and_come_back() {
        let s = sched(
            &rec(Frequency::Month, 1, Some("2026-01-31T08:00:00Z")),
            datetime!(2026-01-01 00:00 UTC),
        );
        assert_eq!(
            run(&s, datetime!(2026-01-31 08:00 UTC), 4),
            [
                datetime!(2026-02-28 08:00 UTC),
                datetime!(2026-03-31 08:00 UTC),
                datetime!(2026-04-30 08:00 UTC),
                datetime!(2026-05-31 08:00 UTC)
            ]
        );
        let leap = sched(
            &rec(Frequency::Month, 12, Some("2024-02-29T00:00:00Z")),
            datetime!(2024-01-01 00:00 UTC),
        );
        assert_eq!(
            run(&leap, datetime!(2024-02-29 00:00 UTC), 4)[3],
            datetime!(2028-02-29 00:00 UTC)
        );
        assert_eq!(
            s.latest_at_or_before(datetime!(2026-03-31 07:59 UTC)),
            Some(datetime!(2026-02-28 08:00 UTC))
        );
        // Within the month but before the day: the previous month's.
        assert_eq!(
            s.next_after(datetime!(2026-06-15 00:00 UTC)),
            Some(datetime!(2026-06-30 08:00 UTC))
        );
    }

    #[test]
    fn day_schedule_runs_every_hour_minute_pair_on_counted_days() {
        let mut r = rec(Frequency::Day, 2, Some("2026-04-01T12:00:00Z"));
        r.schedule = Some(Schedule {
            hours: vec![18, 9],
            minutes: vec![30, 0],
            week_days: vec![],
        });
        let s = sched(&r, datetime!(2026-01-01 00:00 UTC));
        assert_eq!(
            run(&s, datetime!(2026-03-01 00:00 UTC), 5),
            [
                // 09:00 and 09:30 on the first day are before the start.
                datetime!(2026-04-01 18:00 UTC),
                datetime!(2026-04-01 18:30 UTC),
                datetime!(2026-04-03 09:00 UTC),
                datetime!(2026-04-03 09:30 UTC),
                datetime!(2026-04-03 18:00 UTC)
            ]
        );
        assert_eq!(
            s.latest_at_or_before(datetime!(2026-04-03 08:00 UTC)),
            Some(datetime!(2026-04-01 18:30 UTC))
        );
    }

    #[test]
    fn week_schedule_picks_days_of_every_other_week() {
        // 2026-06-03 is a Wednesday; its week starts Monday 2026-06-01.
        let mut r = rec(Frequency::Week, 2, Some("2026-06-03T07:45:00Z"));
        r.schedule = Some(Schedule {
            hours: vec![8],
            minutes: vec![],
            week_days: vec![Weekday::Monday, Weekday::Friday],
        });
        let s = sched(&r, datetime!(2026-01-01 00:00 UTC));
        assert_eq!(
            run(&s, datetime!(2026-06-01 00:00 UTC), 4),
            [
                datetime!(2026-06-05 08:45 UTC),
                datetime!(2026-06-15 08:45 UTC),
                datetime!(2026-06-19 08:45 UTC),
                datetime!(2026-06-29 08:45 UTC)
            ]
        );
    }

    #[test]
    fn week_without_a_schedule_is_seven_days_times_the_interval() {
        let s = sched(
            &rec(Frequency::Week, 1, Some("2026-06-03T07:45:00Z")),
            datetime!(2026-01-01 00:00 UTC),
        );
        assert_eq!(
            s.next_after(datetime!(2026-06-03 07:45 UTC)),
            Some(datetime!(2026-06-10 07:45 UTC))
        );
    }

    #[test]
    fn time_zones_other_than_utc_and_misplaced_schedules_are_refused() {
        let mut r = rec(Frequency::Hour, 1, None);
        r.time_zone = Some("UTC".into());
        assert!(RecurrenceSchedule::check(&r).is_ok());
        r.time_zone = Some("W. Europe Standard Time".into());
        let e = RecurrenceSchedule::check(&r).unwrap_err();
        assert_eq!(e.field, "timeZone");
        assert!(e.message.contains("UTC only"), "{e}");
        assert_eq!(
            e.in_trigger("Every_hour").path,
            "triggers.Every_hour.recurrence.timeZone"
        );
        r.time_zone = None;
        r.schedule = Some(Schedule {
            hours: vec![1],
            ..Schedule::default()
        });
        assert_eq!(RecurrenceSchedule::check(&r).unwrap_err().field, "schedule");
        let mut d = rec(Frequency::Day, 1, None);
        d.schedule = Some(Schedule {
            week_days: vec![Weekday::Monday],
            ..Schedule::default()
        });
        assert_eq!(
            RecurrenceSchedule::check(&d).unwrap_err().field,
            "schedule.weekDays"
        );
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use time::{Duration, OffsetDateTime};

    use super::RecurrenceSchedule;
    use crate::flows::trigger::{Frequency, Recurrence, Schedule, WEEKDAYS as DAYS};

    fn frequency() -> impl Strategy<Value = Frequency> {
        prop_oneof![
            Just(Frequency::Second),
            Just(Frequency::Minute),
            Just(Frequency::Hour),
            Just(Frequency::Day),
            Just(Frequency::Week),
            Just(Frequency::Month),
        ]
    }

    /// 1970 to about 2100, to the microsecond.
    fn instant() -> impl Strategy<Value = OffsetDateTime> {
        (0i64..4_100_000_000, 0i64..1_000_000).prop_map(|(s, us)| {
            OffsetDateTime::UNIX_EPOCH + Duration::seconds(s) + Duration::microseconds(us)
        })
    }

    fn recurrence() -> impl Strategy<Value = Recurrence> {
        (
            frequency(),
            1u32..=1000,
            prop::option::of(instant()),
            any::<bool>(),
            prop::collection::vec(0u8..24, 0..4),
            prop::collection::vec(0u8..60, 0..4),
            prop::collection::vec(0usize..7, 0..4),
        )
            .prop_map(
                |(frequency, interval, start, scheduled, hours, minutes, days)| {
                    let schedule = (scheduled
                        && matches!(frequency, Frequency::Day | Frequency::Week))
                    .then(|| Schedule {
                        hours,
                        minutes,
                        week_days: if frequency == Frequency::Week {
                            days.iter().map(|d| DAYS[*d]).collect()
                        } else {
                            Vec::new()
                        },
                    });
                    Recurrence {
                        frequency,
                        interval,
                        start_time: start.map(|s| {
                            s.format(&time::format_description::well_known::Rfc3339)
                                .unwrap()
                        }),
                        time_zone: None,
                        schedule,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Occurrences strictly increase, none is before the start, each keeps the schedule, and
        /// `latest_at_or_before` finds each from itself and the one before it from just before.
        #[test]
        fn occurrences_increase_from_the_start_and_keep_the_schedule(
            r in recurrence(),
            on in instant(),
            from in instant(),
        ) {
            let s = RecurrenceSchedule::new(&r, on).unwrap();
            let mut previous: Option<OffsetDateTime> = None;
            let mut t = from;
            for _ in 0..12 {
                let Some(next) = s.next_after(t) else { break };
                prop_assert!(next > t, "{next} after {t}");
                prop_assert!(next >= s.start());
                if let Some(p) = previous {
                    prop_assert!(next > p);
                    prop_assert_eq!(s.latest_at_or_before(next - Duration::microseconds(1)), Some(p));
                }
                prop_assert_eq!(s.latest_at_or_before(next), Some(next));
                prop_assert_eq!(s.next_at_or_after(next), Some(next));
                if let Some(given) = &r.schedule {
                    let start = s.start();
                    let hours = if given.hours.is_empty() { vec![start.hour()] } else { given.hours.clone() };
                    let minutes = if given.minutes.is_empty() { vec![start.minute()] } else { given.minutes.clone() };
                    prop_assert!(hours.contains(&next.hour()), "{next}");
                    prop_assert!(minutes.contains(&next.minute()), "{next}");
                    prop_assert_eq!((next.second(), next.nanosecond()), (0, 0));
                    if r.frequency == Frequency::Week {
                        let days = if given.week_days.is_empty() { vec![start.weekday()] } else { given.week_days.clone() };
                        prop_assert!(days.contains(&next.weekday()), "{next}");
                    } else {
                        let since = next.date().to_julian_day() - start.date().to_julian_day();
                        prop_assert_eq!(i64::from(since) % i64::from(r.interval), 0);
                    }
                } else if r.frequency == Frequency::Month {
                    prop_assert!(next.day() == s.start().day() || next.day() == next.month().length(next.year()));
                    prop_assert_eq!(next.time(), s.start().time());
                } else {
                    let unit = match r.frequency {
                        Frequency::Second => 1,
                        Frequency::Minute => 60,
                        Frequency::Hour => 3600,
                        Frequency::Day => 86_400,
                        _ => 7 * 86_400,
                    };
                    let span = (next - s.start()).whole_microseconds();
                    prop_assert_eq!(span % (i128::from(unit) * i128::from(r.interval) * 1_000_000), 0);
                }
                previous = Some(next);
                t = next;
            }
        }
    }
}
