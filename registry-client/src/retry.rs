//! Retrying transient failures: bounded in time (and, if asked, in attempts), exponential
//! backoff with jitter, and the registry's `Retry-After` (RFC 9110 section 10.2.3: seconds
//! or an HTTP date) honoured as a floor. Waits end early when the cancel flag is set.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often and how long transient failures (connection errors, timeouts, 5xx, 408, 429)
/// are retried. The first attempt counts: `max_attempts: 1` never retries.
///
/// `max_elapsed` is the bound an operator sets (`--retry-for`); `max_attempts` is only a
/// safety net and by default no bound at all, so that a longer `max_elapsed` really waits
/// longer (a count of 6 attempts once ended every retry after about 10 s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each one.
    pub initial_delay: Duration,
    /// The longest backoff wait (a `Retry-After` may ask for more).
    pub max_delay: Duration,
    /// Retries go on until this much time has passed since the first attempt: the last
    /// wait is cut to end then, and no retry starts after it (nor one a `Retry-After`
    /// would delay past it).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// Retries for 60 s: waits of about 0.5, 1, 2, 4, 8, then 16 s each (jittered to
    /// 50–100%), as many as fit.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: u32::MAX,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(16),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

/// A request that failed transiently and is about to be tried again, as told to
/// [`Config::on_retry`](crate::Config::on_retry) before the wait. Never a credential: the
/// URL is shown as in errors (no user information, long query values cut).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNotice {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The URL asked for, in its display form.
    pub url: String,
    /// The attempt about to be made (2 for the first retry).
    pub attempt: u32,
    /// How long until it is made.
    pub wait: Duration,
    /// What failed (the registry's answer or the transport error).
    pub error: String,
}

/// Told of each retry before its wait ([`Config::on_retry`](crate::Config::on_retry)).
/// Called on the thread that made the request; it should return quickly.
pub type RetryObserver = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// The state of one retried operation.
pub(crate) struct Backoff<'p> {
    policy: &'p RetryPolicy,
    attempts: u32,
    started: Instant,
}

impl<'p> Backoff<'p> {
    pub(crate) fn new(policy: &'p RetryPolicy) -> Backoff<'p> {
        Backoff {
            policy,
            attempts: 1,
            started: Instant::now(),
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// After a failed attempt: the wait before the next one, or `None` to give up.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        self.next_delay_at(Instant::now(), retry_after)
    }

    /// [`Backoff::next_delay`] at time `now` (tests pass a clock of their own).
    fn next_delay_at(&mut self, now: Instant, retry_after: Option<Duration>) -> Option<Duration> {
        if self.attempts >= self.policy.max_attempts {
            return None;
        }
        let exp = self.attempts.saturating_sub(1).min(30);
        let base = self
            .policy
            .initial_delay
            .saturating_mul(1u32 << exp)
            .min(self.policy.max_delay);
        let jittered = base.mul_f64(0.5 + 0.5 * random_unit());
        // The last wait is cut to end at the bound, so the last attempt comes when the
        // operator's time is up, not up to `max_delay` before it. A `Retry-After` that
        // asks for more than is left is not honoured by hammering: give up.
        let left = self
            .policy
            .max_elapsed
            .saturating_sub(now.saturating_duration_since(self.started));
        if left.is_zero() || retry_after.is_some_and(|ra| ra > left) {
            return None;
        }
        let delay = match retry_after {
            Some(ra) => ra.max(jittered),
            None => jittered,
        }
        .min(left);
        self.attempts += 1;
        Some(delay)
    }

    /// Sleeps before the next attempt; `false` means give up (also when `cancel` is set
    /// before or during the wait).
    pub(crate) fn wait(&mut self, retry_after: Option<Duration>, cancel: &AtomicBool) -> bool {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        match self.next_delay(retry_after) {
            Some(d) => sleep_unless_cancelled(d, cancel),
            None => false,
        }
    }
}

/// Sleeps `d` in short steps; `false` if `cancel` was set meanwhile.
pub(crate) fn sleep_unless_cancelled(d: Duration, cancel: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// A number in [0, 1) that differs between calls and threads: the standard library's
/// randomly keyed hasher, fed the time. Jitter needs no more than that.
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After: 120` or `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`, measured from `now`.
/// A date in the past means "now". Capped at one hour: a longer wait is not a retry.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // Obsolete RFC 850 and asctime forms are valid too.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:38 1994", now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(3600))
        );
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn backoff_is_bounded_in_attempts_and_time() {
        let policy = RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_elapsed: Duration::from_secs(60),
        };
        let mut b = Backoff::new(&policy);
        let delays: Vec<Duration> = std::iter::from_fn(|| b.next_delay(None)).collect();
        assert_eq!(delays.len(), 3);
        let caps = [100, 200, 300];
        for (d, cap) in delays.iter().zip(caps) {
            assert!(
                *d >= Duration::from_millis(cap / 2) && *d <= Duration::from_millis(cap),
                "{d:?}"
            );
        }
        assert_eq!(b.attempts(), 4);

        // Retry-After is a floor, and a wait past max_elapsed is not taken.
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(5),
            ..policy
        };
        let mut b = Backoff::new(&policy);
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(b.next_delay(Some(Duration::from_secs(10))), None);
        let once = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(Backoff::new(&once).next_delay(None), None);
    }

    #[test]
    fn the_time_bound_is_the_bound() {
        // `--retry-for 20` must keep retrying for about 20 s, not stop
        // after 6 attempts (about 10 s of waits). The clock is the sum of the waits.
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(20),
            max_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        let mut b = Backoff::new(&policy);
        let mut now = b.started;
        let mut waits = 0;
        while let Some(d) = b.next_delay_at(now, None) {
            now += d;
            waits += 1;
            assert!(waits < 1000);
        }
        let waited = now - b.started;
        assert!(waits > 8, "{waits} waits");
        // The last attempt is at the bound.
        assert_eq!(waited, Duration::from_secs(20));
        // And with 10 minutes, it keeps going for minutes.
        let long = RetryPolicy {
            max_elapsed: Duration::from_secs(600),
            ..RetryPolicy::default()
        };
        let mut b = Backoff::new(&long);
        let mut now = b.started;
        while let Some(d) = b.next_delay_at(now, None) {
            now += d;
        }
        assert_eq!(now - b.started, Duration::from_secs(600));
    }

    #[test]
    fn a_cancelled_wait_ends_at_once() {
        let cancel = AtomicBool::new(true);
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        assert!(!Backoff::new(&policy).wait(None, &cancel));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn jitter_varies() {
        let values: std::collections::BTreeSet<u64> =
            (0..20).map(|_| (random_unit() * 1e9) as u64).collect();
        assert!(values.len() > 10);
        assert!((0..1000)
            .map(|_| random_unit())
            .all(|x| (0.0..1.0).contains(&x)));
    }
}
