//! Apply, Get and Delete semantics: level-based generations, idempotency keys,
//! idempotent deletes, the codes of refusals. Every check here runs once per kind
//! under test, so a driver that handles VPCs but not VMs is caught.

use yunshu_proto::errors::reasons;
use yunshu_proto::tonic::Code;
use yunshu_proto::v1::{self, ResourceKind};

use crate::probe::{Ctx, Fail, describe, ensure, expect_code, fail};
use crate::spec::SpecFactory;

/// `apply_idempotent`: two concurrent identical Applies and a third one create
/// exactly one resource.
pub(crate) async fn apply_idempotent(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.spec.new_id("idem");
        let req = ctx.spec.request(kind, &id, 1);
        let (a, b) = futures::join!(ctx.apply(req.clone()), ctx.apply(req.clone()));
        let c = ctx.apply(req).await;
        let mut created = 0;
        for (n, r) in [a, b, c].into_iter().enumerate() {
            match r {
                Err(s) => fail!("{kind:?} {id}: Apply #{} failed: {}", n + 1, describe(&s)),
                Ok(r) => {
                    created += usize::from(r.created);
                    let state_id = r.state.map(|s| s.id).unwrap_or_default();
                    ensure!(
                        state_id == id,
                        "{kind:?} {id}: Apply #{} returned the state of {state_id:?}",
                        n + 1
                    );
                    if n == 2 {
                        ensure!(
                            !r.created && !r.changed,
                            "{kind:?} {id}: the third identical Apply reported created={} changed={}",
                            r.created,
                            r.changed
                        );
                    }
                }
            }
        }
        ensure!(
            created == 1,
            "{kind:?} {id}: {created} of 3 identical Applies reported created = true, expected exactly 1"
        );
        let listed = ctx.list_all(kind, 1000).await?;
        let copies = listed.iter().filter(|s| s.id == id).count();
        ensure!(
            copies == 1,
            "{kind:?} {id}: List shows {copies} resources with that id, expected 1"
        );
    }
    Ok(())
}

/// Fields that must not move when nothing was asked to change.
pub(crate) fn essence(s: &v1::ResourceState) -> impl PartialEq + std::fmt::Debug {
    (
        s.generation,
        s.observed_generation,
        s.phase,
        s.spec.clone(),
        s.placement.clone(),
        s.updated_unix_ms,
    )
}

/// `reapply_same_generation_is_noop`: after convergence the same Apply changes
/// nothing, not even the timestamp.
pub(crate) async fn reapply_same_generation_is_noop(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.create(kind, "noop").await?;
        let before = ctx.wait_running(kind, &id, 1).await?;
        let r = ctx.must_apply(ctx.spec.request(kind, &id, 1)).await?;
        ensure!(
            !r.created && !r.changed,
            "{kind:?} {id}: re-Apply of generation 1 reported created={} changed={}",
            r.created,
            r.changed
        );
        let after = ctx
            .get(kind, &id)
            .await
            .map_err(|s| Fail(format!("Get {id}: {}", describe(&s))))?;
        for (what, state) in [
            ("Apply's answer", r.state.unwrap_or_default()),
            ("Get", after),
        ] {
            ensure!(
                essence(&state) == essence(&before),
                "{kind:?} {id}: state changed by a no-op re-Apply ({what}): before {:?}, after {:?}",
                essence(&before),
                essence(&state)
            );
        }
    }
    Ok(())
}

/// `apply_new_generation_updates`: generation 2 is taken and converges.
pub(crate) async fn apply_new_generation_updates(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.create(kind, "update").await?;
        ctx.wait_running(kind, &id, 1).await?;
        let r = ctx.must_apply(ctx.spec.request(kind, &id, 2)).await?;
        ensure!(
            r.changed && !r.created,
            "{kind:?} {id}: Apply of generation 2 reported created={} changed={} (expected changed only)",
            r.created,
            r.changed
        );
        let generation = r.state.map_or(0, |s| s.generation);
        ensure!(
            generation == 2,
            "{kind:?} {id}: Apply of generation 2 answered with generation {generation}"
        );
        let state = ctx.wait_running(kind, &id, 2).await?;
        ensure!(
            state.spec == Some(ctx.spec.spec(kind, &id, 2)),
            "{kind:?} {id}: converged at generation 2 but Get shows another spec: {:?}",
            state.spec
        );
    }
    Ok(())
}

/// `stale_generation_refused`: generation 1 after 2 is FAILED_PRECONDITION and
/// leaves the resource at 2.
pub(crate) async fn stale_generation_refused(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.create(kind, "stale").await?;
        ctx.must_apply(ctx.spec.request(kind, &id, 2)).await?;
        let result = ctx.apply(ctx.spec.request(kind, &id, 1)).await;
        expect_code(
            result,
            Code::FailedPrecondition,
            &format!("{kind:?} {id}: Apply of generation 1 after 2"),
        )?;
        let state = ctx
            .get(kind, &id)
            .await
            .map_err(|s| Fail(format!("Get {id}: {}", describe(&s))))?;
        ensure!(
            state.generation == 2,
            "{kind:?} {id}: after the refused stale Apply the resource is at generation {}",
            state.generation
        );
    }
    Ok(())
}

/// `idempotency_key_not_reused`: a key already used for one resource cannot
/// create another.
pub(crate) async fn idempotency_key_not_reused(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let first = ctx.create(kind, "key-a").await?;
        let other = ctx.spec.new_id("key-b");
        let mut req = ctx.spec.request(kind, &other, 1);
        req.idempotency_key = SpecFactory::idempotency_key(&first, 1);
        let status = expect_code(
            ctx.apply(req).await,
            Code::FailedPrecondition,
            &format!("{kind:?}: Apply of {other} with the key of {first}"),
        )?;
        let reason = yunshu_proto::errors::reason(&status).map(|i| i.reason);
        ensure!(
            reason.as_deref() == Some(reasons::IDEMPOTENCY_KEY_REUSED),
            "{kind:?}: reused key refused with reason {reason:?}, expected {}",
            reasons::IDEMPOTENCY_KEY_REUSED
        );
        expect_code(
            ctx.get(kind, &other).await,
            Code::NotFound,
            &format!("{kind:?}: Get {other} after its Apply was refused"),
        )?;
    }
    Ok(())
}

/// `delete_idempotent`: Delete never errors; it says whether something existed.
pub(crate) async fn delete_idempotent(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.create(kind, "delete").await?;
        let first = ctx.must_delete(kind, &id).await?;
        ensure!(
            first.existed,
            "{kind:?} {id}: first Delete reported existed = false"
        );
        // A second Delete while the first may still be in progress must not error;
        // either answer to `existed` is fine then.
        ctx.must_delete(kind, &id).await?;
        ctx.wait_gone(kind, &id).await?;
        for n in 3..=4 {
            let later = ctx.must_delete(kind, &id).await?;
            ensure!(
                !later.existed,
                "{kind:?} {id}: Delete #{n}, after Get answered NOT_FOUND, reported existed = true"
            );
        }
        let never = ctx.spec.new_id("never");
        let r = ctx.must_delete(kind, &never).await?;
        ensure!(
            !r.existed,
            "{kind:?}: Delete of never-created {never} reported existed = true"
        );
    }
    Ok(())
}

/// `get_unknown_not_found`: NOT_FOUND with a reason.
pub(crate) async fn get_unknown_not_found(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.spec.new_id("unknown");
        let status = expect_code(
            ctx.get(kind, &id).await,
            Code::NotFound,
            &format!("{kind:?}: Get of unknown {id}"),
        )?;
        ensure!(
            yunshu_proto::errors::reason(&status).is_some_and(|i| !i.reason.is_empty()),
            "{kind:?}: NOT_FOUND for {id} carries no ErrorInfo reason"
        );
    }
    Ok(())
}

/// `invalid_spec_rejected`: malformed requests are INVALID_ARGUMENT and create
/// nothing.
pub(crate) async fn invalid_spec_rejected(ctx: &Ctx<'_>) -> Result<(), Fail> {
    let mut problems = Vec::new();
    for &kind in ctx.spec.kinds() {
        let mut cases: Vec<(String, v1::ApplyRequest)> = Vec::new();
        let mut case = |what: String, edit: &dyn Fn(&mut v1::ApplyRequest)| {
            let id = ctx.spec.new_id("invalid");
            let mut req = ctx.spec.request(kind, &id, 1);
            edit(&mut req);
            cases.push((what, req));
        };
        case(format!("{kind:?} with a spec of another kind"), &|r| {
            r.spec = Some(ctx.spec.other_kind_spec(kind, &r.id));
        });
        case(format!("{kind:?} at generation 0"), &|r| r.generation = 0);
        case(format!("{kind:?} with an empty idempotency key"), &|r| {
            r.idempotency_key.clear();
        });
        case(format!("{kind:?} without a spec"), &|r| r.spec = None);
        case(format!("{kind:?} with an empty id"), &|r| r.id.clear());
        case(format!("kind UNSPECIFIED with a {kind:?} spec"), &|r| {
            r.kind = ResourceKind::Unspecified as i32;
        });
        let (what, spec) = ctx.spec.invalid_spec(kind, "");
        case(what.to_owned(), &|r| {
            r.spec = Some(spec.clone());
        });
        for (what, req) in cases {
            let id = req.id.clone();
            let checkable = !id.is_empty() && req.kind != ResourceKind::Unspecified as i32;
            if let Err(f) = expect_code(ctx.apply(req).await, Code::InvalidArgument, &what) {
                problems.push(f.0);
            }
            // Whatever the answer, nothing may exist under that id afterwards.
            if checkable
                && let Err(f) = expect_code(
                    ctx.get(kind, &id).await,
                    Code::NotFound,
                    &format!("Get {id} after Apply of {what}"),
                )
            {
                problems.push(f.0);
            }
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}

/// `converges_to_running`: new resources reach RUNNING at their generation.
pub(crate) async fn converges_to_running(ctx: &Ctx<'_>) -> Result<(), Fail> {
    for &kind in ctx.spec.kinds() {
        let id = ctx.create(kind, "run").await?;
        let state = ctx.wait_running(kind, &id, 1).await?;
        ensure!(
            state.kind == kind as i32 && state.id == id,
            "{kind:?} {id}: Get answered for ({}, {:?})",
            state.kind,
            state.id
        );
    }
    Ok(())
}
