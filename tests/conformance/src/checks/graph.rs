//! Every kind end to end, and the references between kinds.
//!
//! `lifecycle_<kind>`: for each kind the driver declares, build what it names
//! first (in dependency order, each converged), apply it, converge, re-apply the
//! same generation (a no-op), delete everything in reverse order until gone.
//! `dependency_missing_refused` and `delete_in_use_refused` probe every
//! reference of `driver.proto` whose two ends the driver declares. Kinds or
//! references the driver does not declare are skipped, never failed.

use yunshu_proto::errors;
use yunshu_proto::errors::reasons;
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind};

use super::Done;
use super::apply::essence;
use crate::graph::{self, Edge, Node, Ref, label};
use crate::probe::{Ctx, Fail, describe, ensure, expect_code, fail};
use crate::spec::{Links, SetupError};

/// A resource the check built: (kind, id).
type Built = Vec<(ResourceKind, String)>;

fn declared<'a>(ctx: &'a Ctx<'_>) -> Result<&'a [ResourceKind], Fail> {
    ctx.spec
        .declared()
        .ok_or_else(|| Fail(format!("setup: {}", SetupError::NoDeclaredKinds)))
}

/// `bare-metal` for `BARE_METAL`: ids take lower-case letters, digits, dashes.
fn id_label(kind: ResourceKind) -> String {
    label(kind).replace('_', "-")
}

/// The Apply request of `node` at `generation`, its references resolved to the
/// ids of the nodes built before it.
fn request(
    ctx: &Ctx<'_>,
    node: &Node,
    id: &str,
    generation: u64,
    built: &Built,
) -> Result<v1::ApplyRequest, Fail> {
    let mut links = Links::default();
    for (slot, r) in &node.links {
        let target = match r {
            Ref::Id(id) => id.clone(),
            Ref::Node(i) => match built.get(*i) {
                Some((_, id)) => id.clone(),
                None => fail!("kit bug: a plan names node {i} before it is built"),
            },
        };
        links.set(*slot, target);
    }
    ctx.spec
        .linked_request(node.kind, id, generation, &links)
        .map_err(|e| Fail(format!("setup: {} {id}: {e}", label(node.kind))))
}

/// Applies `plan` in order, each resource converged to RUNNING before the next
/// (what it names must exist first). Appends to `built` as it goes, so a
/// failure still tells the caller what exists.
async fn build(ctx: &Ctx<'_>, plan: &[Node], prefix: &str, built: &mut Built) -> Result<(), Fail> {
    for node in plan {
        let id = ctx
            .spec
            .new_id(&format!("{prefix}-{}", id_label(node.kind)));
        let req = request(ctx, node, &id, 1, built)?;
        ctx.must_apply(req).await?;
        ctx.wait_running(node.kind, &id, 1).await?;
        built.push((node.kind, id));
    }
    Ok(())
}

/// Deletes `built` newest first (a resource before what it names), each gone
/// before the next.
async fn tear_down(ctx: &Ctx<'_>, built: &Built) -> Result<(), Fail> {
    for (kind, id) in built.iter().rev() {
        ctx.must_delete(*kind, id).await?;
        ctx.wait_gone(*kind, id).await?;
        ctx.forget(*kind, id);
    }
    Ok(())
}

/// Expects `result` to be refused with `code` and `reason`; returns the
/// ErrorInfo.
fn refusal<T>(
    result: Result<T, Status>,
    code: Code,
    reason: &str,
    what: &str,
) -> Result<v1::ErrorInfo, Fail> {
    let status = expect_code(result, code, what)?;
    let info = errors::reason(&status).unwrap_or_default();
    ensure!(
        info.reason == reason,
        "{what}: refused with reason {:?}, expected {reason} ({})",
        info.reason,
        describe(&status)
    );
    Ok(info)
}

async fn must_get(ctx: &Ctx<'_>, kind: ResourceKind, id: &str) -> Result<v1::ResourceState, Fail> {
    ctx.get(kind, id)
        .await
        .map_err(|s| Fail(format!("Get {} {id}: {}", label(kind), describe(&s))))
}

/// `lifecycle_<kind>`.
pub(crate) async fn lifecycle(ctx: &Ctx<'_>, kind: ResourceKind) -> Result<Done, Fail> {
    let declared = declared(ctx)?;
    if !declared.contains(&kind) {
        return Ok(Done::Skipped(format!(
            "the driver does not declare {}",
            kind.as_str_name()
        )));
    }
    let plan = match graph::lifecycle_plan(kind, declared) {
        Ok(plan) => plan,
        Err(why) => return Ok(Done::Skipped(why.0)),
    };
    let Some((node, deps)) = plan.split_last() else {
        fail!("kit bug: an empty plan for {}", label(kind));
    };
    let mut built = Built::new();
    build(ctx, deps, "life", &mut built).await?;

    let id = ctx.spec.new_id(&format!("life-{}", id_label(kind)));
    let req = request(ctx, node, &id, 1, &built)?;
    let sent = req.spec.clone();
    let first = ctx.must_apply(req.clone()).await?;
    ensure!(
        first.created,
        "{kind:?} {id}: the first Apply reported created = false"
    );
    let before = ctx.wait_running(kind, &id, 1).await?;
    ensure!(
        before.spec == sent,
        "{kind:?} {id}: converged with another spec than the one applied (references dropped?): {:?}",
        before.spec
    );
    let again = ctx.must_apply(req).await?;
    ensure!(
        !again.created && !again.changed,
        "{kind:?} {id}: re-Apply of generation 1 reported created={} changed={}",
        again.created,
        again.changed
    );
    let after = must_get(ctx, kind, &id).await?;
    for (what, state) in [
        ("Apply's answer", again.state.unwrap_or_default()),
        ("Get", after),
    ] {
        ensure!(
            essence(&state) == essence(&before),
            "{kind:?} {id}: state changed by a no-op re-Apply ({what}): before {:?}, after {:?}",
            essence(&before),
            essence(&state)
        );
    }
    if matches!(kind, ResourceKind::Vm | ResourceKind::BareMetal) {
        power_cycle(ctx, kind, &id, node, &built).await?;
    }
    built.push((kind, id));
    tear_down(ctx, &built).await?;
    Ok(Done::Passed)
}

/// A server's power state (`stopped`, seed 002 art. 13, 14): generation 2
/// asks it powered off and it converges to STOPPED at 2; generation 3 clears
/// the flag and it runs again at 3.
async fn power_cycle(
    ctx: &Ctx<'_>,
    kind: ResourceKind,
    id: &str,
    node: &Node,
    built: &Built,
) -> Result<(), Fail> {
    for (generation, stopped) in [(2, true), (3, false)] {
        let mut req = request(ctx, node, id, generation, built)?;
        match req.spec.as_mut().and_then(|s| s.spec.as_mut()) {
            Some(v1::resource_spec::Spec::Vm(vm)) => vm.stopped = stopped,
            Some(v1::resource_spec::Spec::BareMetal(bm)) => bm.stopped = stopped,
            _ => fail!("kit bug: {kind:?} {id} has no server spec"),
        }
        ctx.must_apply(req).await?;
        let want = if stopped {
            v1::Phase::Stopped
        } else {
            v1::Phase::Running
        };
        ctx.wait_phase(kind, id, generation, want)
            .await
            .map_err(|f| Fail(format!("power state (stopped = {stopped}): {}", f.0)))?;
    }
    Ok(())
}

fn nothing_to_probe() -> Done {
    Done::Skipped(
        "no reference of driver.proto has both ends among the kinds the driver declares".to_owned(),
    )
}

/// Referrer kinds without a required reference, cheapest first: the first one
/// the driver declares (with something to name) has its update probed.
const CHEAP_REFERRERS: [ResourceKind; 7] = [
    ResourceKind::SecurityGroup,
    ResourceKind::WafPolicy,
    ResourceKind::Volume,
    ResourceKind::Eip,
    ResourceKind::LoadBalancer,
    ResourceKind::Vm,
    ResourceKind::BareMetal,
];

/// `dependency_missing_refused`: a spec naming a resource the driver does not
/// hold is FAILED_PRECONDITION DEPENDENCY_NOT_FOUND, for every reference, and
/// changes nothing (no resource on create; the old generation on update).
pub(crate) async fn dependency_missing_refused(ctx: &Ctx<'_>) -> Result<Done, Fail> {
    let declared = declared(ctx)?;
    let edges: Vec<&Edge> = graph::probeable(declared).collect();
    if edges.is_empty() {
        return Ok(nothing_to_probe());
    }
    let mut problems = Vec::new();
    for edge in &edges {
        let missing = ctx.spec.new_id("missing");
        let plan = graph::missing_plan(edge, declared, &missing).map_err(|u| Fail(u.0))?;
        let Some((node, deps)) = plan.split_last() else {
            fail!("kit bug: an empty plan for {}", edge.field);
        };
        let mut built = Built::new();
        build(ctx, deps, "dep", &mut built).await?;
        let id = ctx.spec.new_id(&format!("dep-{}", id_label(edge.from)));
        let what = format!(
            "Apply of {} {id} whose {} names {missing}, which does not exist",
            label(edge.from),
            edge.field
        );
        let req = request(ctx, node, &id, 1, &built)?;
        if let Err(f) = refusal(
            ctx.apply(req).await,
            Code::FailedPrecondition,
            reasons::DEPENDENCY_NOT_FOUND,
            &what,
        ) {
            problems.push(f.0);
        }
        if let Err(f) = expect_code(
            ctx.get(edge.from, &id).await,
            Code::NotFound,
            &format!("Get {id} after the {what}"),
        ) {
            problems.push(f.0);
        }
        tear_down(ctx, &built).await?;
    }

    // An update that adds a missing reference leaves the resource as it was.
    let update = CHEAP_REFERRERS.iter().find_map(|from| {
        edges
            .iter()
            .copied()
            .find(|e| e.from == *from && !e.required)
    });
    if let Some(edge) = update {
        let mut built = Built::new();
        // Generation 1 names nothing: none of the cheap referrers has a
        // required reference.
        let plain = Node {
            kind: edge.from,
            links: Vec::new(),
        };
        build(ctx, std::slice::from_ref(&plain), "dep-upd", &mut built).await?;
        let Some((kind, id)) = built.last().cloned() else {
            fail!("kit bug: nothing built");
        };
        let before = must_get(ctx, kind, &id).await?;
        let missing = ctx.spec.new_id("missing");
        let named = Node {
            kind,
            links: vec![(edge.slot, Ref::Id(missing.clone()))],
        };
        let req = request(ctx, &named, &id, 2, &built)?;
        let what = format!(
            "Apply of generation 2 of {} {id} whose {} names {missing}, which does not exist",
            label(kind),
            edge.field
        );
        if let Err(f) = refusal(
            ctx.apply(req).await,
            Code::FailedPrecondition,
            reasons::DEPENDENCY_NOT_FOUND,
            &what,
        ) {
            problems.push(f.0);
        }
        let after = must_get(ctx, kind, &id).await?;
        if essence(&after) != essence(&before) {
            problems.push(format!(
                "after the {what}, the resource changed: before {:?}, after {:?}",
                essence(&before),
                essence(&after)
            ));
        }
        tear_down(ctx, &built).await?;
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Done::Passed)
}

/// `delete_in_use_refused`: deleting a resource another live resource names is
/// FAILED_PRECONDITION RESOURCE_IN_USE with `used_by` = the referrer, for every
/// reference, and changes nothing (both stay as they were).
pub(crate) async fn delete_in_use_refused(ctx: &Ctx<'_>) -> Result<Done, Fail> {
    let declared = declared(ctx)?;
    let edges: Vec<&Edge> = graph::probeable(declared).collect();
    if edges.is_empty() {
        return Ok(nothing_to_probe());
    }
    let mut problems = Vec::new();
    for edge in edges {
        let (plan, target) = graph::in_use_plan(edge, declared).map_err(|u| Fail(u.0))?;
        let mut built = Built::new();
        build(ctx, &plan, "use", &mut built).await?;
        let (Some((tkind, tid)), Some((rkind, rid))) =
            (built.get(target).cloned(), built.last().cloned())
        else {
            fail!("kit bug: {} built without target or referrer", edge.field);
        };
        let target_before = must_get(ctx, tkind, &tid).await?;
        let referrer_before = must_get(ctx, rkind, &rid).await?;
        let what = format!(
            "Delete of {} {tid} while {} {rid} names it ({})",
            label(tkind),
            label(rkind),
            edge.field
        );
        match refusal(
            ctx.delete(tkind, &tid).await,
            Code::FailedPrecondition,
            reasons::RESOURCE_IN_USE,
            &what,
        ) {
            Err(f) => problems.push(f.0),
            Ok(info) => {
                let used_by = info.metadata.get("used_by").map(String::as_str);
                if used_by != Some(rid.as_str()) {
                    problems.push(format!(
                        "{what}: metadata used_by is {used_by:?}, expected {rid:?}"
                    ));
                }
            }
        }
        for (kind, id, before) in [
            (tkind, &tid, &target_before),
            (rkind, &rid, &referrer_before),
        ] {
            match ctx.get(kind, id).await {
                Ok(after) if essence(&after) == essence(before) => {}
                Ok(after) => problems.push(format!(
                    "after the {what}, {} {id} changed: before {:?}, after {:?}",
                    label(kind),
                    essence(before),
                    essence(&after)
                )),
                Err(s) => problems.push(format!(
                    "after the {what}, Get {} {id}: {}",
                    label(kind),
                    describe(&s)
                )),
            }
        }
        tear_down(ctx, &built).await?;
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Done::Passed)
}
