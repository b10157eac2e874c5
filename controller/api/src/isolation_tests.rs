//! The tenant-isolation matrix: every role × every endpoint × own and foreign
//! objects, with the status each cell must get. Tenant A is 110105 (li, wang),
//! tenant B is 110106 (zhao). Rules the matrix pins down (SPEC §1, §8):
//! - another tenant's object is 404, never 403 — and so is any tenant's object
//!   for a role that may not see tenant data at all (auditor, provider operator,
//!   platform admin): existence never leaks;
//! - an endpoint a role may not use at all (a listing) is 403; no credentials is 401;
//! - the platform admin runs the platform but reads no tenant business data and
//!   not the audit log (003 §3.2.2.15); auditors read the audit log and nothing
//!   else;
//! - 三员分立: the system administrator (platform admin) manages drivers,
//!   settings, catalog, policy and tenants but no users; the security
//!   administrator manages users and nothing of the platform's.

use serde_json::{Value, json};

use crate::test_app::{App, Auth};

fn line(quantity: u32) -> Value {
    json!({
        "server": {
            "server_name": "app", "network_area": "gov_extranet", "form": "vm",
            "architecture": "x86_64", "vcpu": 2, "memory_gib": 4, "system_disk_gib": 50,
            "data_disk_gib": 0, "os": "openEuler 22.03", "purpose": "应用", "backup_gib": 0
        },
        "quantity": quantity
    })
}

/// `he` is the platform admin (系统管理员), `xu` the security admin
/// (安全管理员), `qian` the auditor (安全审计员): 三员分立, 003 §3.2.2.15.
/// `admin` is the installation's admin token.
const ROLES: [&str; 11] = [
    "li", "wang", "zhao", "sun", "zhou", "qian", "op", "he", "xu", "admin", "anon",
];

struct Cell {
    endpoint: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// Expected status per role, in the order of [`ROLES`].
    expect: [u16; 11],
}

#[tokio::test]
async fn every_role_against_every_endpoint_own_and_foreign() {
    let app = App::with_users().await;
    let mut auth: Vec<(&str, Auth)> = Vec::new();
    for who in ROLES {
        let headers = match who {
            "admin" => App::admin(),
            "anon" => Vec::new(),
            user => app.login(user).await,
        };
        auth.push((who, headers));
    }
    let li = &auth[0].1;
    // Tenant A's order (a draft) on A's demo system 110105001.
    let order = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": "onboarding", "system": "110105001", "lines": [line(2)]})),
            li,
        )
        .await;
    assert_eq!(order.status.as_u16(), 201, "{}", order.body);
    let a_order = order.body["id"].as_str().expect("id").to_owned();
    let edit = json!({"lines": [line(1)]});

    //                      li   wang zhao sun  zhou qian op   he   xu   admin anon
    let cells = vec![
        Cell {
            endpoint: "list systems",
            method: "GET",
            path: "/api/v1/systems".into(),
            body: None,
            expect: [200, 200, 200, 200, 200, 403, 403, 403, 403, 403, 401],
        },
        Cell {
            endpoint: "get A's system",
            method: "GET",
            path: "/api/v1/systems/110105001".into(),
            body: None,
            expect: [200, 200, 404, 200, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "list orders",
            method: "GET",
            path: "/api/v1/orders".into(),
            body: None,
            // the provider operator lists the approved orders naming its platform
            expect: [200, 200, 200, 200, 200, 403, 200, 403, 403, 403, 401],
        },
        Cell {
            endpoint: "get A's order",
            method: "GET",
            path: format!("/api/v1/orders/{a_order}"),
            body: None,
            expect: [200, 200, 404, 200, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "edit A's draft",
            method: "PUT",
            path: format!("/api/v1/orders/{a_order}"),
            body: Some(edit.clone()),
            expect: [200, 200, 404, 403, 403, 404, 404, 404, 404, 404, 401],
        },
        // Draft → approved is never a valid step; who gets which refusal is the point.
        Cell {
            endpoint: "approve A's draft",
            method: "POST",
            path: format!("/api/v1/orders/{a_order}/transitions"),
            body: Some(json!({"to": "approved"})),
            expect: [403, 403, 404, 403, 409, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "lower a line of A's draft",
            method: "POST",
            path: format!("/api/v1/orders/{a_order}/lines/0/approve"),
            body: Some(json!({"quantity": 1})),
            expect: [403, 403, 404, 409, 403, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "read the audit log",
            method: "GET",
            path: "/api/v1/audit".into(),
            body: None,
            expect: [403, 403, 403, 403, 403, 200, 403, 403, 403, 403, 401],
        },
        Cell {
            endpoint: "list drivers",
            method: "GET",
            path: "/api/v1/admin/drivers".into(),
            body: None,
            expect: [403, 403, 403, 403, 403, 403, 403, 200, 403, 200, 401],
        },
        // Platform user managers see everyone; a department admin its own.
        Cell {
            endpoint: "list users",
            method: "GET",
            path: "/api/v1/users".into(),
            body: None,
            expect: [403, 200, 403, 403, 403, 403, 403, 403, 200, 200, 401],
        },
        Cell {
            endpoint: "file A's draft as emergency",
            method: "POST",
            path: format!("/api/v1/orders/{a_order}/emergency"),
            body: Some(json!({"reason": "应急"})),
            expect: [403, 409, 404, 403, 403, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "get A's usage period",
            method: "GET",
            path: "/api/v1/systems/110105001/usage-term".into(),
            body: None,
            expect: [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 401],
        },
        // 002 art. 18, 004 art. 27: the department sees the suspension, only
        // the management unit decides (zhou suspends, then resumes).
        Cell {
            endpoint: "get A's suspension",
            method: "GET",
            path: "/api/v1/systems/110105001/suspension".into(),
            body: None,
            expect: [200, 200, 404, 200, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "suspend A's system",
            method: "POST",
            path: "/api/v1/systems/110105001/suspension".into(),
            body: Some(json!({"reason": "安全检查通报的高危漏洞未整改"})),
            expect: [403, 403, 404, 403, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "resume A's system",
            method: "POST",
            path: "/api/v1/systems/110105001/suspension/resume".into(),
            body: Some(json!({"reason": "已整改"})),
            expect: [403, 403, 404, 403, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "list A's system's resources",
            method: "GET",
            path: "/api/v1/systems/110105001/resources".into(),
            body: None,
            expect: [200, 200, 404, 200, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "A's system's cost this month",
            method: "GET",
            path: "/api/v1/systems/110105001/cost".into(),
            body: None,
            // Reviewers see systems, not bills.
            expect: [200, 200, 404, 403, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "follow A's system's resources",
            method: "GET",
            path: "/api/v1/systems/110105001/resources/events".into(),
            body: None,
            expect: [200, 200, 404, 200, 200, 404, 404, 404, 404, 404, 401],
        },
        Cell {
            endpoint: "list alarms",
            method: "GET",
            path: "/api/v1/alarms".into(),
            body: None,
            expect: [200, 200, 200, 200, 200, 403, 403, 403, 403, 403, 401],
        },
        // Capacity: approvers see every provider, provider operators their own.
        Cell {
            endpoint: "read capacity",
            method: "GET",
            path: "/api/v1/capacity".into(),
            body: None,
            expect: [403, 403, 403, 403, 200, 403, 200, 403, 403, 403, 401],
        },
        Cell {
            endpoint: "list expansion orders",
            method: "GET",
            path: "/api/v1/expansion-orders?open=true".into(),
            body: None,
            expect: [403, 403, 403, 403, 200, 403, 200, 403, 403, 403, 401],
        },
        Cell {
            endpoint: "list catalogs",
            method: "GET",
            path: "/api/v1/catalogs".into(),
            body: None,
            expect: [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401],
        },
        // The bodies below are not valid files: permitted callers get 400.
        Cell {
            endpoint: "import a catalog",
            method: "POST",
            path: "/api/v1/catalogs/import?format=csv".into(),
            body: Some(json!({})),
            expect: [403, 403, 403, 403, 400, 403, 403, 400, 403, 400, 401],
        },
        Cell {
            endpoint: "add a calendar year",
            method: "PUT",
            path: "/api/v1/calendar/2030".into(),
            body: Some(json!({})),
            expect: [403, 403, 403, 403, 400, 403, 403, 400, 403, 400, 401],
        },
        Cell {
            endpoint: "write a policy",
            method: "PUT",
            path: "/api/v1/policies/city".into(),
            body: Some(json!({})),
            expect: [403, 403, 403, 403, 400, 403, 403, 400, 403, 400, 401],
        },
        Cell {
            endpoint: "export the audit log",
            method: "GET",
            path: "/api/v1/audit/export".into(),
            body: None,
            expect: [403, 403, 403, 403, 403, 200, 403, 403, 403, 403, 401],
        },
        // Only the platform admin; the test app runs no reconciler, so 409.
        Cell {
            endpoint: "request a resync",
            method: "POST",
            path: "/api/v1/admin/resync".into(),
            body: None,
            expect: [403, 403, 403, 403, 403, 403, 403, 409, 403, 409, 401],
        },
        // 三员分立: the system administrator registers departments; the
        // security administrator only reads them (to pick one for a user).
        // 110105 exists, so a permitted caller gets 409 and nothing changes.
        Cell {
            endpoint: "register a tenant",
            method: "POST",
            path: "/api/v1/tenants".into(),
            body: Some(json!({"code": "110105", "name": "重复", "supervising_unit": "区政府"})),
            expect: [403, 403, 403, 403, 403, 403, 403, 409, 403, 409, 401],
        },
        Cell {
            endpoint: "list tenants",
            method: "GET",
            path: "/api/v1/tenants".into(),
            body: None,
            expect: [403, 403, 403, 403, 403, 403, 403, 200, 200, 200, 401],
        },
        // The security administrator (and a department's admin, in its own
        // department) creates users; li exists, so a permitted caller gets
        // 409. The system administrator is not one (三员分立); a tenant it
        // may not see is not found.
        Cell {
            endpoint: "create a user in A",
            method: "POST",
            path: "/api/v1/users".into(),
            body: Some(json!({
                "id": "li", "display_name": "李", "tenant": "110105",
                "roles": [{"role": {"name": "tenant_user"}, "scope": {"type": "tenant", "tenant": "110105"}}]
            })),
            expect: [403, 409, 404, 404, 404, 404, 404, 404, 409, 409, 401],
        },
        // Anyone may try an activation code; a wrong one is refused alike.
        Cell {
            endpoint: "activate with a wrong code",
            method: "POST",
            path: "/api/v1/activate".into(),
            body: Some(
                json!({"code": "0123456789abcdef0123456789abcdef", "password": "Zhengwuyun2026"}),
            ),
            expect: [400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400],
        },
        Cell {
            endpoint: "who am I",
            method: "GET",
            path: "/api/v1/auth/me".into(),
            body: None,
            expect: [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401],
        },
    ];

    let mut wrong = Vec::new();
    for cell in &cells {
        for (i, (who, headers)) in auth.iter().enumerate() {
            let r = app
                .call(cell.method, &cell.path, cell.body.clone(), headers)
                .await;
            let got = r.status.as_u16();
            if got != cell.expect[i] {
                wrong.push(format!(
                    "{:<28} {:<5} expected {} got {} {}",
                    cell.endpoint, who, cell.expect[i], got, r.body
                ));
            }
            // A refusal never leaks: 404s look the same as for a missing object.
            if got == 404 {
                assert!(
                    r.body["code"]
                        .as_str()
                        .is_some_and(|c| c.ends_with("NOT_FOUND")),
                    "{}",
                    r.body
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Creating things: each role in its own scope and in the other tenant's.
    let create_system = |number: u32| {
        json!({
            "name": format!("系统{number}"), "system_type": "internal_office", "security_level": "level2",
            "run_schedule": "5x8", "network_nature": "gov_extranet",
            "contact": {"name": "张三", "phone": "13800138000"}, "description": "测试"
        })
    };
    let r = app
        .call(
            "POST",
            "/api/v1/systems",
            Some(create_system(1)),
            &auth[0].1,
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "tenant user creates in own tenant: {}",
        r.body
    );
    for (who, headers) in &auth[3..10] {
        let r = app
            .call("POST", "/api/v1/systems", Some(create_system(2)), headers)
            .await;
        assert_eq!(
            r.status.as_u16(),
            403,
            "{who} may not create systems: {}",
            r.body
        );
    }
    // B's user sees none of A's orders in a listing.
    let list = app.call("GET", "/api/v1/orders", None, &auth[2].1).await;
    assert!(
        list.body["items"].as_array().is_some_and(Vec::is_empty),
        "{}",
        list.body
    );
}
