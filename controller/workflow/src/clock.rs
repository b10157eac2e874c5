//! Where "now" comes from. Production reads the system clock once per request, at
//! the edge; tests inject a [`Clock`] they move by hand so deadlines across a
//! holiday can be asserted without sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// The workflow's clock. Handlers take it as an optional request extension
/// (`Extension<Clock>`); without one they use [`Clock::System`].
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// A manual clock shared by every clone; only moves when told to.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock::Manual(Arc::new(Mutex::new(at)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            // A poisoned lock still holds a valid time.
            Clock::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Sets a manual clock; no effect on the system clock.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Clock::Manual(t) = self {
            *t.lock().unwrap_or_else(|e| e.into_inner()) = at;
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(t) = self {
            let mut g = t.lock().unwrap_or_else(|e| e.into_inner());
            *g += by;
        }
    }
}
