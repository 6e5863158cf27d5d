//! A handler's timing phases (parse, process, serialize…): measured on the server's clock, sent
//! in a `Server-Timing` header and moved into the trace, where they split the server's bar.

use axum::{
    http::{HeaderName, HeaderValue},
    response::Response,
};
use protocol::trace::Phase;

use super::clock::server_now_us;

/// Timing phases a handler measured, on the server's clock. A handler puts them in the
/// response's extensions and in a `Server-Timing` header; the middleware moves them into the
/// trace, where they split the server's activation bar.
#[derive(Debug, Clone, Default)]
pub struct Phases(pub Vec<Phase>);

impl Phases {
    /// Runs `f` as the phase `name`.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = server_now_us();
        let out = f();
        self.push(name, start);
        out
    }

    /// Awaits `f` as the phase `name`.
    pub async fn time_async<T>(&mut self, name: &str, f: impl Future<Output = T>) -> T {
        let start = server_now_us();
        let out = f.await;
        self.push(name, start);
        out
    }

    /// Runs `f` as the phase `name`, starting where the last phase ended (or now, for the
    /// first): for a handler whose phases follow one another with nothing worth timing between
    /// them. One reading of the clock per phase instead of two (each is a `clock_gettime`).
    pub fn time_next<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = self.last_end().unwrap_or_else(server_now_us);
        let out = f();
        self.push(name, start);
        out
    }

    /// Awaits `f` as the phase `name`, starting where the last phase ended (see
    /// [`Phases::time_next`]).
    pub async fn time_next_async<T>(&mut self, name: &str, f: impl Future<Output = T>) -> T {
        let start = self.last_end().unwrap_or_else(server_now_us);
        let out = f.await;
        self.push(name, start);
        out
    }

    /// When the last phase measured ended, on the server's clock.
    fn last_end(&self) -> Option<i64> {
        self.0.last().map(|p| p.start_us + p.dur_us)
    }

    fn push(&mut self, name: &str, start_us: i64) {
        self.0.push(Phase {
            name: name.to_owned(),
            start_us,
            dur_us: server_now_us() - start_us,
        });
    }

    /// The standard `Server-Timing` header value: `parse;dur=0.412, process;dur=200.100, …`.
    pub fn server_timing(&self) -> HeaderValue {
        // Sized for durations under 10⁹ ms, so that the string grows once at most (growing it
        // phase by phase cost more than the rest of the header).
        let mut value = Vec::with_capacity(
            self.0
                .iter()
                .map(|p| p.name.len() + ", ;dur=999999999.999".len())
                .sum(),
        );
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(p.name.as_bytes());
            value.extend_from_slice(b";dur=");
            push_millis(&mut value, p.dur_us);
        }
        HeaderValue::from_bytes(&value).expect("phase names are tokens")
    }

    /// Adds the header and the extension to `response`.
    pub fn attach(self, mut response: Response) -> Response {
        response
            .headers_mut()
            .insert(SERVER_TIMING, self.server_timing());
        response.extensions_mut().insert(self);
        response
    }
}

/// The header's name, made once (a `&str` key is parsed on every insert).
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Appends `us` microseconds as milliseconds with three decimals (`412` → `0.412`). By hand:
/// `write!` with `{:.3}` of an `f64` cost about 5,000 instructions a request and `fmt` with
/// integers about 1,000 a number (callgrind, the echo under load), most of what the
/// `Server-Timing` header cost.
fn push_millis(out: &mut Vec<u8>, us: i64) {
    let mut n = us.max(0).unsigned_abs();
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    // At least four digits, so that there is a whole part before the three decimals.
    while n > 0 || digits.len() - start < 4 {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let (whole, decimals) = digits[start..].split_at(digits.len() - start - 3);
    out.extend_from_slice(whole);
    out.push(b'.');
    out.extend_from_slice(decimals);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_have_three_decimals() {
        for (us, ms) in [
            (0, "0.000"),
            (7, "0.007"),
            (412, "0.412"),
            (1_000, "1.000"),
            (200_100, "200.100"),
            (-5, "0.000"),
            (i64::MAX, "9223372036854775.807"),
        ] {
            let mut out = Vec::new();
            push_millis(&mut out, us);
            assert_eq!(out, ms.as_bytes(), "{us} µs");
        }
    }

    #[test]
    fn following_phases_start_where_the_last_ended() {
        let mut phases = Phases::default();
        let pause = || std::thread::sleep(std::time::Duration::from_millis(2));
        phases.time_next("parse", pause);
        phases.time_next("process", pause);
        let [parse, process] = &phases.0[..] else {
            panic!("two phases: {phases:?}")
        };
        assert!(parse.dur_us >= 2_000 && process.dur_us >= 2_000);
        assert_eq!(process.start_us, parse.start_us + parse.dur_us);
    }

    #[test]
    fn server_timing_lists_each_phase() {
        let phases = Phases(vec![
            Phase {
                name: "parse".into(),
                start_us: 0,
                dur_us: 412,
            },
            Phase {
                name: "process".into(),
                start_us: 412,
                dur_us: 200_100,
            },
        ]);
        assert_eq!(
            phases.server_timing(),
            "parse;dur=0.412, process;dur=200.100"
        );
    }
}
