//! List: the controller finds drift and orphans by paging through everything, so a
//! page boundary that loses or repeats an item is a real bug.

use std::collections::HashMap;

use yunshu_proto::tonic::Code;
use yunshu_proto::v1::{self, ResourceKind};

use crate::probe::{Ctx, Fail, describe, ensure, expect_code, fail};

/// `list_complete_paginated`.
pub(crate) async fn list_complete_paginated(ctx: &Ctx<'_>) -> Result<(), Fail> {
    let kind = ctx.spec.primary_kind();
    let page_size = ctx.options.list_page_size.max(1);
    let mut ids = Vec::new();
    for n in 0..ctx.options.list_count {
        // Zero-padded so that the driver's byte order is also creation order.
        let id = ctx.spec.new_id(&format!("list-{n:03}"));
        ctx.must_apply(ctx.spec.request(kind, &id, 1)).await?;
        ids.push(id);
    }

    // Kind filter, small pages: completeness, order, page sizes.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0usize;
    loop {
        let page = ctx
            .list(v1::ListRequest {
                kind: kind as i32,
                page_size,
                page_token: token.clone(),
            })
            .await
            .map_err(|s| {
                Fail(format!(
                    "List page {} (token {token:?}): {}",
                    pages + 1,
                    describe(&s)
                ))
            })?;
        pages += 1;
        ensure!(
            page.items.len() <= page_size as usize,
            "List page {pages} has {} items, more than page_size {page_size}",
            page.items.len()
        );
        for item in &page.items {
            ensure!(
                item.kind == kind as i32,
                "List filtered by {kind:?} returned {} of kind {}",
                item.id,
                item.kind
            );
        }
        seen.extend(page.items);
        if page.next_page_token.is_empty() {
            break;
        }
        ensure!(
            page.next_page_token != token,
            "List page {pages} returned its own page token again"
        );
        // Bounded: every page must bring at least one item of a finite set.
        ensure!(
            pages <= seen.len() + 1,
            "List keeps returning empty pages with a next_page_token"
        );
        token = page.next_page_token;
    }
    check_order(&seen)?;
    check_each_once(
        &seen,
        &ids,
        &format!("List of {kind:?} with page_size {page_size}"),
    )?;

    // All kinds: the (kind, id) order must hold across kinds too.
    let all = ctx.list_all(ResourceKind::Unspecified, 50).await?;
    check_order(&all)?;
    check_each_once(&all, &ids, "List of every kind")?;

    expect_code(
        ctx.list(v1::ListRequest {
            kind: kind as i32,
            page_size,
            page_token: "conformance-bogus-page-token".to_owned(),
        })
        .await,
        Code::InvalidArgument,
        "List with a bogus page_token",
    )?;
    Ok(())
}

/// Strictly increasing (kind, id): no duplicate, no reordering across pages.
fn check_order(items: &[v1::ResourceState]) -> Result<(), Fail> {
    for pair in items.windows(2) {
        let (a, b) = ((pair[0].kind, &pair[0].id), (pair[1].kind, &pair[1].id));
        if a >= b {
            fail!(
                "List order is not strictly increasing by (kind, id): ({}, {:?}) then ({}, {:?})",
                a.0,
                a.1,
                b.0,
                b.1
            );
        }
    }
    Ok(())
}

fn check_each_once(items: &[v1::ResourceState], ids: &[String], what: &str) -> Result<(), Fail> {
    let mut counts: HashMap<&str, usize> = ids.iter().map(|i| (i.as_str(), 0)).collect();
    for item in items {
        if let Some(c) = counts.get_mut(item.id.as_str()) {
            *c += 1;
        }
    }
    let missing: Vec<_> = ids
        .iter()
        .filter(|i| counts[i.as_str()] == 0)
        .map(String::as_str)
        .collect();
    let repeated: Vec<_> = ids
        .iter()
        .filter(|i| counts[i.as_str()] > 1)
        .map(String::as_str)
        .collect();
    ensure!(
        missing.is_empty() && repeated.is_empty(),
        "{what}: {} of {} created ids missing {missing:?}, repeated {repeated:?}",
        missing.len(),
        ids.len()
    );
    Ok(())
}
