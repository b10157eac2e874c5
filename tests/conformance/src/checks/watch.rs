//! Watch: the controller follows drivers through this stream and resumes it after
//! every disconnect, so order and exact resumption are what keep its view right.

use std::cmp::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use yunshu_proto::tonic::codec::Streaming;
use yunshu_proto::v1::{self, ChangeType, ResourceKind};

use crate::probe::{Ctx, Fail, describe, ensure, fail};

/// Cursors are opaque, but they must grow. Numeric cursors (what the SDK issues)
/// compare as numbers, anything else as strings.
pub(crate) fn cursor_cmp(a: &str, b: &str) -> Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// One event of the resource under test.
#[derive(Clone, Debug)]
struct Seen {
    cursor: String,
    change: i32,
    generation: u64,
}

fn change_name(c: i32) -> &'static str {
    ChangeType::try_from(c).map_or("UNKNOWN", |c| c.as_str_name())
}

fn summary(seq: &[Seen]) -> String {
    seq.iter()
        .map(|s| format!("{}@g{}#{}", change_name(s.change), s.generation, s.cursor))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The resource change in `event` if it is about (kind, id).
fn about(event: &v1::WatchEvent, kind: ResourceKind, id: &str) -> Option<Seen> {
    match &event.event {
        Some(v1::watch_event::Event::Resource(r)) => {
            let state = r.state.as_ref()?;
            (state.kind == kind as i32 && state.id == id).then(|| Seen {
                cursor: event.cursor.clone(),
                change: r.r#type,
                generation: state.generation,
            })
        }
        _ => None,
    }
}

/// Reads `stream` until the DELETED event of (kind, id), checking that cursors
/// strictly increase. Returns every event read and the resource's own ones.
async fn read_until_deleted(
    ctx: &Ctx<'_>,
    stream: &mut Streaming<v1::WatchEvent>,
    kind: ResourceKind,
    id: &str,
    mut last_cursor: Option<String>,
) -> Result<(Vec<v1::WatchEvent>, Vec<Seen>), Fail> {
    let deadline = Instant::now() + ctx.options.patience;
    let mut all = Vec::new();
    let mut mine = Vec::new();
    loop {
        let event = ctx
            .next_event(stream, deadline)
            .await
            .map_err(|f| Fail(format!("{f} (events of {id} so far: [{}])", summary(&mine))))?;
        if let Some(prev) = &last_cursor {
            ensure!(
                cursor_cmp(&event.cursor, prev) == Ordering::Greater,
                "cursor {:?} follows {prev:?}: cursors must strictly increase",
                event.cursor
            );
        }
        last_cursor = Some(event.cursor.clone());
        let seen = about(&event, kind, id);
        all.push(event);
        if let Some(seen) = seen {
            let done = seen.change == ChangeType::Deleted as i32;
            mine.push(seen);
            if done {
                return Ok((all, mine));
            }
        }
    }
}

/// The lifecycle create (gen 1) → update (gen 2) → delete, as events: CREATED
/// first (when `from_start`), UPDATED in between (phase changes allowed), one at
/// generation 2, DELETED last, generations never going back.
fn check_lifecycle(seq: &[Seen], from_start: bool) -> Result<(), Fail> {
    let text = summary(seq);
    let Some((last, rest)) = seq.split_last() else {
        fail!("no events for the resource");
    };
    ensure!(
        last.change == ChangeType::Deleted as i32,
        "the last event is not DELETED: [{text}]"
    );
    let middle = if from_start {
        let Some((first, middle)) = rest.split_first() else {
            fail!("only a DELETED event, no CREATED or UPDATED: [{text}]");
        };
        ensure!(
            first.change == ChangeType::Created as i32,
            "the first event is not CREATED: [{text}]"
        );
        middle
    } else {
        rest
    };
    ensure!(
        middle
            .iter()
            .all(|s| s.change == ChangeType::Updated as i32),
        "expected only UPDATED events between CREATED and DELETED: [{text}]"
    );
    ensure!(
        middle.iter().any(|s| s.generation == 2),
        "no UPDATED event at generation 2: [{text}]"
    );
    ensure!(
        seq.windows(2).all(|w| w[0].generation <= w[1].generation),
        "generations go backwards: [{text}]"
    );
    Ok(())
}

/// create → update → delete, each converged before the next.
async fn lifecycle(ctx: &Ctx<'_>, kind: ResourceKind, id: &str, created: bool) -> Result<(), Fail> {
    if !created {
        ctx.must_apply(ctx.spec.request(kind, id, 1)).await?;
    }
    ctx.wait_running(kind, id, 1).await?;
    ctx.must_apply(ctx.spec.request(kind, id, 2)).await?;
    ctx.wait_running(kind, id, 2).await?;
    ctx.must_delete(kind, id).await?;
    Ok(())
}

/// `watch_create_update_delete_in_order`.
pub(crate) async fn watch_create_update_delete_in_order(ctx: &Ctx<'_>) -> Result<(), Fail> {
    let kind = ctx.spec.primary_kind();
    let mut stream = ctx.watch("").await?;
    let id = ctx.spec.new_id("watch");
    lifecycle(ctx, kind, &id, false).await?;
    let (_, mine) = read_until_deleted(ctx, &mut stream, kind, &id, None).await?;
    check_lifecycle(&mine, true)
}

/// `watch_resume_from_cursor`.
pub(crate) async fn watch_resume_from_cursor(ctx: &Ctx<'_>) -> Result<(), Fail> {
    let kind = ctx.spec.primary_kind();
    // The reference stream stays open throughout and sees everything.
    let mut reference = ctx.watch("").await?;
    let mut first = ctx.watch("").await?;
    let id = ctx.spec.new_id("resume");
    ctx.must_apply(ctx.spec.request(kind, &id, 1)).await?;

    // Remember the cursor of the CREATED event, then drop the stream.
    let deadline = Instant::now() + ctx.options.patience;
    let cursor = loop {
        let event = ctx.next_event(&mut first, deadline).await?;
        if let Some(seen) = about(&event, kind, &id) {
            ensure!(
                seen.change == ChangeType::Created as i32,
                "the first event of {id} is {}, not CREATED",
                change_name(seen.change)
            );
            break event.cursor;
        }
    };
    drop(first);

    // Changes nobody is watching (except the reference).
    lifecycle(ctx, kind, &id, true).await?;
    let (reference_events, _) = read_until_deleted(ctx, &mut reference, kind, &id, None).await?;
    let Some(at) = reference_events.iter().position(|e| e.cursor == cursor) else {
        fail!("a stream opened at the same time never delivered cursor {cursor:?}");
    };
    let expected: Vec<&str> = reference_events[at + 1..]
        .iter()
        .map(|e| e.cursor.as_str())
        .collect();

    let mut resumed = ctx.watch(&cursor).await?;
    let (got, mine) = read_until_deleted(ctx, &mut resumed, kind, &id, Some(cursor.clone()))
        .await
        .map_err(|f| Fail(format!("resumed from {cursor:?}: {f}")))?;
    let got: Vec<&str> = got.iter().map(|e| e.cursor.as_str()).collect();
    ensure!(
        got == expected,
        "resumed from {cursor:?}, got cursors {got:?}, but a stream that stayed open saw {expected:?}"
    );
    check_lifecycle(&mine, false).map_err(|f| Fail(format!("resumed from {cursor:?}: {f}")))?;

    garbage_cursor_refused(ctx).await
}

/// A cursor the driver never issued must fail the call or the stream at once,
/// never silently start from somewhere.
async fn garbage_cursor_refused(ctx: &Ctx<'_>) -> Result<(), Fail> {
    const GARBAGE: &str = "conformance-garbage-cursor";
    let wait = ctx.options.patience.min(Duration::from_secs(5));
    let mut stream = match ctx.probe.watch(ctx.check, GARBAGE).await {
        // The kit's own call timeout is no refusal.
        Err(s) if s.message().starts_with("conformance kit:") => {
            fail!("Watch from garbage cursor {GARBAGE:?}: {}", describe(&s))
        }
        Err(_) => return Ok(()),
        Ok(stream) => stream,
    };
    match tokio::time::timeout(wait, stream.message()).await {
        Ok(Err(status)) => {
            ctx.probe.record(ctx.check, "Watch (stream)", &status);
            Ok(())
        }
        Ok(Ok(Some(event))) => fail!(
            "Watch from garbage cursor {GARBAGE:?} delivered an event (cursor {:?}) instead of an error",
            event.cursor
        ),
        Ok(Ok(None)) => {
            fail!("Watch from garbage cursor {GARBAGE:?} ended without an error status")
        }
        Err(_) => fail!(
            "Watch from garbage cursor {GARBAGE:?} was accepted: no error within {} s",
            wait.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(change: ChangeType, generation: u64) -> Seen {
        Seen {
            cursor: String::new(),
            change: change as i32,
            generation,
        }
    }

    #[test]
    fn cursors_compare_numerically_when_numeric() {
        assert_eq!(cursor_cmp("10", "9"), Ordering::Greater);
        assert_eq!(cursor_cmp("b", "a"), Ordering::Greater);
    }

    #[test]
    fn lifecycle_order() {
        use ChangeType::*;
        let good = [
            seen(Created, 1),
            seen(Updated, 1),
            seen(Updated, 2),
            seen(Deleted, 2),
        ];
        assert!(check_lifecycle(&good, true).is_ok());
        assert!(check_lifecycle(&good[1..], false).is_ok());
        assert!(check_lifecycle(&good[1..], true).is_err(), "no CREATED");
        let reordered = [seen(Created, 1), seen(Deleted, 2), seen(Updated, 2)];
        assert!(check_lifecycle(&reordered, true).is_err());
        let no_update = [seen(Created, 1), seen(Deleted, 1)];
        assert!(check_lifecycle(&no_update, true).is_err());
    }
}
