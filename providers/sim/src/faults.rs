//! Fault injection: the trouble a real provider causes, on demand, so the
//! controller's retries, back-off and watch resumption get exercised.
//!
//! Owns [`Faults`] (what to inject), the per-call check (latency, then a random
//! UNAVAILABLE with reason INJECTED_FAULT) and the background task that cuts every
//! watch stream periodically.

use std::time::Duration;

use tokio::sync::watch;
use yunshu_driver_sdk::EventSink;
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};

/// What the simulator injects. `Faults::default()` injects nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Fraction of Apply/Delete/Get calls that fail with UNAVAILABLE (retryable)
    /// and reason INJECTED_FAULT before changing anything. Clamped to 0.0–1.0;
    /// NaN counts as 0.
    pub error_rate: f64,
    /// Added to every driver call (inventory, apply, get, delete, list).
    pub added_latency: Duration,
    /// Cut every open watch stream this often (watchers resume from their cursor).
    /// `None` or zero = never.
    pub drop_watch_every: Option<Duration>,
}

impl Faults {
    /// The same faults with values brought into range.
    pub(crate) fn normalized(self) -> Faults {
        let error_rate = if self.error_rate.is_nan() {
            0.0
        } else {
            self.error_rate.clamp(0.0, 1.0)
        };
        Faults {
            error_rate,
            added_latency: self.added_latency,
            drop_watch_every: self.drop_watch_every.filter(|d| !d.is_zero()),
        }
    }
}

/// Which call is being made: only some of them fail at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Inventory,
    Apply,
    Get,
    Delete,
    List,
}

impl Call {
    fn may_fail(self) -> bool {
        matches!(self, Call::Apply | Call::Get | Call::Delete)
    }
}

/// Sleeps the added latency, then fails the call with the configured probability.
pub(crate) async fn before_call(faults: Faults, call: Call) -> Result<(), Status> {
    if !faults.added_latency.is_zero() {
        tokio::time::sleep(faults.added_latency).await;
    }
    // The thread RNG is not Send: draw in a block that holds no await point.
    let fail = call.may_fail() && faults.error_rate > 0.0 && {
        let draw: f64 = rand::random();
        draw < faults.error_rate
    };
    if fail {
        tracing::debug!(?call, "simulator: injecting a fault");
        return Err(status(
            Code::Unavailable,
            reasons::INJECTED_FAULT,
            format!(
                "simulator: injected fault on {call:?} (error rate {}); retry",
                faults.error_rate
            ),
        ));
    }
    Ok(())
}

/// Cuts every watch stream each `drop_watch_every`, following changes of the
/// faults; ends when the simulator (the sender) is dropped.
pub(crate) async fn drop_watchers(mut faults: watch::Receiver<Faults>, events: EventSink) {
    loop {
        let every = faults.borrow_and_update().drop_watch_every;
        match every {
            Some(period) => {
                tokio::select! {
                    () = tokio::time::sleep(period) => {
                        tracing::info!("simulator: injected fault: dropping every watch stream");
                        events.disconnect_watchers();
                    }
                    changed = faults.changed() => if changed.is_err() { return },
                }
            }
            None => {
                if faults.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_clamps() {
        let f = Faults {
            error_rate: 7.0,
            added_latency: Duration::ZERO,
            drop_watch_every: Some(Duration::ZERO),
        }
        .normalized();
        assert_eq!(f.error_rate, 1.0);
        assert_eq!(f.drop_watch_every, None);
        let f = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        }
        .normalized();
        assert_eq!(f.error_rate, 0.0);
    }

    #[tokio::test]
    async fn list_and_inventory_never_fail_at_random() {
        let always = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert!(before_call(always, Call::List).await.is_ok());
        assert!(before_call(always, Call::Inventory).await.is_ok());
        let err = before_call(always, Call::Get).await.expect_err("rate 1.0");
        assert_eq!(err.code(), Code::Unavailable);
    }
}
