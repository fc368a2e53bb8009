//! Which backups to keep: `keep_last`, `keep_hourly/daily/weekly/monthly/yearly` and `keep_within`,
//! the way restic's `forget` reads them. Pure: a list of backups in, a decision per backup out.
use serde::{Deserialize, Serialize};

/// A retention policy. A backup is kept when any rule keeps it; the newest complete backup is
/// always kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Keep the N newest backups.
    pub keep_last: u32,
    /// Keep the newest backup of each of the last N hours that have one.
    pub keep_hourly: u32,
    /// … days.
    pub keep_daily: u32,
    /// … ISO weeks (Monday to Sunday).
    pub keep_weekly: u32,
    /// … calendar months.
    pub keep_monthly: u32,
    /// … calendar years.
    pub keep_yearly: u32,
    /// Keep every backup younger than this, counted back from the newest one: `36h`, `30d`, `2w`,
    /// `6m` (30 days), `1y` (365 days), or combinations such as `1y6m`. Empty: off.
    pub keep_within: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_last: 7,
            keep_hourly: 0,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
            keep_yearly: 0,
            keep_within: String::new(),
        }
    }
}

/// Parse a `keep_within` duration into seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            'm' => 30 * 86_400,
            'y' => 365 * 86_400,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{c}` (use h, d, w, m, y, e.g. `30d` or `1y6m`)"
                ))
            }
        };
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`{s}`: a number must come before `{c}`"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!("`{s}`: the number `{num}` has no unit (h, d, w, m, y)"));
    }
    Ok(total)
}

impl Policy {
    /// Errors for a policy that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        parse_duration(&self.keep_within)?;
        Ok(())
    }

    /// True when no rule is set (pruning would keep only the newest backup).
    pub fn is_empty(&self) -> bool {
        self.keep_last == 0
            && self.keep_hourly == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
            && self.keep_monthly == 0
            && self.keep_yearly == 0
            && parse_duration(&self.keep_within).unwrap_or(0) == 0
    }
}

/// One backup as retention sees it.
#[derive(Debug, Clone)]
pub struct Item {
    /// When it was made, seconds since the epoch (UTC).
    pub time: i64,
    /// It is complete: its checksum file is present and matches.
    pub good: bool,
}

/// Why a backup is kept (empty: it goes).
pub type Reasons = Vec<String>;

fn days_to_civil(days: i64) -> (i64, u32) {
    let (y, m, _) = crate::timefmt::civil_from_days(days);
    (y, m)
}

/// Decide for each item (any order) why it is kept; an empty list means delete.
pub fn plan(items: &[Item], policy: &Policy) -> Vec<Reasons> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(items[i].time));
    let mut reasons: Vec<Reasons> = vec![Vec::new(); items.len()];
    for (rank, &i) in order.iter().enumerate() {
        if rank < policy.keep_last as usize {
            reasons[i].push(format!("last {}", policy.keep_last));
        }
    }
    type Key = fn(i64) -> i64;
    let buckets: [(&str, u32, Key); 5] = [
        ("hourly", policy.keep_hourly, |t| t.div_euclid(3600)),
        ("daily", policy.keep_daily, |t| t.div_euclid(86_400)),
        ("weekly", policy.keep_weekly, |t| {
            let days = t.div_euclid(86_400);
            days - (days + 3).rem_euclid(7) // the Monday of its ISO week
        }),
        ("monthly", policy.keep_monthly, |t| {
            let (y, m) = days_to_civil(t.div_euclid(86_400));
            y * 12 + m as i64
        }),
        ("yearly", policy.keep_yearly, |t| days_to_civil(t.div_euclid(86_400)).0),
    ];
    for (name, n, key) in buckets {
        let mut last: Option<i64> = None;
        let mut kept = 0;
        for &i in &order {
            if kept >= n {
                break;
            }
            let k = key(items[i].time);
            if last != Some(k) {
                last = Some(k);
                kept += 1;
                reasons[i].push(format!("{name} {n}"));
            }
        }
    }
    let within = parse_duration(&policy.keep_within).unwrap_or(0);
    if within > 0 {
        if let Some(&newest) = order.first() {
            let since = items[newest].time - within;
            for &i in &order {
                if items[i].time >= since {
                    reasons[i].push(format!("within {}", policy.keep_within));
                }
            }
        }
    }
    if let Some(&i) = order.iter().find(|&&i| items[i].good) {
        if reasons[i].is_empty() {
            reasons[i].push("newest complete backup".into());
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 86_400;

    fn items(times: &[i64]) -> Vec<Item> {
        times.iter().map(|&t| Item { time: t, good: true }).collect()
    }

    fn kept(items: &[Item], p: &Policy) -> Vec<i64> {
        let mut v: Vec<i64> = plan(items, p)
            .iter()
            .zip(items)
            .filter(|(r, _)| !r.is_empty())
            .map(|(_, it)| it.time)
            .collect();
        v.sort();
        v
    }

    fn only(f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = Policy {
            keep_last: 0,
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            keep_within: String::new(),
        };
        f(&mut p);
        p
    }

    #[test]
    fn keep_last_and_daily_pick_the_newest_of_each_day() {
        // 2026-11-20 .. 2026-11-26, four backups a day at 00, 06, 12, 18 h.
        let base = 1_795_132_800; // 2026-11-20T00:00:00Z
        let times: Vec<i64> = (0..7)
            .flat_map(|d| (0..4).map(move |q| base + d * D + q * 6 * H))
            .collect();
        let it = items(&times);
        assert_eq!(kept(&it, &only(|p| p.keep_last = 3)), times[25..].to_vec());
        let daily = kept(&it, &only(|p| p.keep_daily = 3));
        assert_eq!(
            daily,
            vec![base + 4 * D + 18 * H, base + 5 * D + 18 * H, base + 6 * D + 18 * H]
        );
        let within = kept(&it, &only(|p| p.keep_within = "1d".into()));
        assert_eq!(within, times[times.len() - 5..].to_vec());
    }

    #[test]
    fn weekly_buckets_are_iso_weeks_and_monthly_calendar_months() {
        // 2026-11-22 is a Sunday, 2026-11-23 a Monday: two different ISO weeks.
        let sun = 1_795_305_600; // 2026-11-22T00:00:00Z
        let mon = sun + D;
        let it = items(&[sun, mon, mon + H]);
        assert_eq!(kept(&it, &only(|p| p.keep_weekly = 5)), vec![sun, mon + H]);
        // 2026-10-31 and 2026-11-01 are in different months.
        let oct31 = 1_793_404_800;
        let it = items(&[oct31, oct31 + D, oct31 + 2 * D]);
        assert_eq!(kept(&it, &only(|p| p.keep_monthly = 5)), vec![oct31, oct31 + 2 * D]);
    }

    #[test]
    fn the_newest_complete_backup_is_never_deleted() {
        let mut it = items(&[100, 200, 300]);
        it[2].good = false; // newest is incomplete
        let r = plan(&it, &only(|_| {}));
        assert!(r[2].is_empty());
        assert_eq!(r[1], vec!["newest complete backup".to_string()]);
        assert!(r[0].is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("36h").unwrap(), 36 * H);
        assert_eq!(parse_duration("1y6m").unwrap(), 365 * D + 180 * D);
        assert_eq!(parse_duration("").unwrap(), 0);
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("3x").unwrap_err().contains("unknown unit"));
    }
}
