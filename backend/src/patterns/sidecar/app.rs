//! The application behind the sidecar: a plain handler that knows nothing of request ids,
//! tracing, retries or rate limits. To show what a sidecar is for, it fails a chosen share of
//! its requests with a 500, spread evenly over them (not at random: a run can be repeated).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{Json, Router, extract::Path, extract::State, routing::get};
use protocol::sidecar::OrderView;

use crate::error::AppError;

/// The app's state: its failure share and how many requests it has served.
pub struct App {
    pub fail_percent: u8,
    pub served: AtomicU64,
}

impl App {
    pub fn new(fail_percent: u8) -> App {
        App {
            fail_percent,
            served: AtomicU64::new(0),
        }
    }
}

/// Whether request `n` (from 1) is one of the failing share: exactly `percent`% of any long
/// stretch of requests fail, the first one among them when `percent` > 0.
pub fn fails(n: u64, percent: u8) -> bool {
    let p = u64::from(percent);
    (n * p).div_ceil(100) > ((n - 1) * p).div_ceil(100)
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/orders/{id}", get(order))
        .fallback(|| async { AppError::NotFound("the app serves /orders/{id}".into()) })
        .with_state(app)
}

async fn order(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, AppError> {
    let served = app.served.fetch_add(1, Ordering::Relaxed) + 1;
    if fails(served, app.fail_percent) {
        return Err(AppError::Internal(format!(
            "the app failed request {served} (it fails {}% of requests)",
            app.fail_percent
        )));
    }
    let order: u32 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("order id must be a number, got {id:?}")))?;
    Ok(Json(OrderView {
        order,
        status: "shipped".into(),
        served,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_share_is_exact_and_spread_out() {
        let pattern = |p| (1..=10).map(|n| fails(n, p)).collect::<Vec<_>>();
        assert_eq!(pattern(0), [false; 10]);
        assert_eq!(pattern(100), [true; 10]);
        let half = pattern(50);
        assert_eq!(half.iter().filter(|f| **f).count(), 5);
        assert_eq!(&half[..4], [true, false, true, false]);
        assert_eq!(pattern(30).iter().filter(|f| **f).count(), 3);
    }
}
