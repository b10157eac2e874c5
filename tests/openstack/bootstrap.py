"""Idempotent bootstrap of the test OpenStack (run by `up` with the venv's python).

  bootstrap.py             identity: service project/users, endpoints, the
                           tenant project `yunshu` and its user (also a member
                           of `yunshu-110105`, tenant 110105's own), openrc files
  bootstrap.py resources   flavors, a tiny image, volume type `ssd`, the
                           external network `public`
"""
import os
import sys

from keystoneauth1 import session
from keystoneauth1.identity import v3

E = os.environ
IP = E.get("OS_IP", "127.0.0.1")
P = {k: E.get("PORT_" + k.upper()) for k in
     ("keystone", "glance", "placement", "nova", "neutron", "cinder", "octavia")}
OSH = E.get("YUNSHU_OS_HOME", os.path.expanduser("~/.cache/yunshu-openstack"))
ADMIN_PASS = E.get("YUNSHU_OS_ADMIN_PASS", "admin-secret")
SERVICE_PASS = E.get("YUNSHU_OS_SERVICE_PASS", "service-secret")
DEMO_PASS = E.get("YUNSHU_OS_DEMO_PASS", "yunshu-secret")
KS = f"http://{IP}:{P['keystone']}/v3"


def sess():
    auth = v3.Password(auth_url=KS, username="admin", password=ADMIN_PASS,
                       project_name="admin", user_domain_id="default",
                       project_domain_id="default")
    return session.Session(auth=auth)


S = sess()


def ks(method, path, **kw):
    r = S.request(KS + path, method, raise_exc=False, **kw)
    if r.status_code >= 400:
        raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def find(coll, name, **filters):
    q = "&".join(f"{k}={v}" for k, v in {"name": name, **filters}.items())
    items = ks("GET", f"/{coll}?{q}")[coll]
    return items[0] if items else None


def ensure(coll, name, body, **filters):
    got = find(coll, name, **filters)
    if got:
        return got
    single = coll[:-1]
    return ks("POST", f"/{coll}", json={single: {"name": name, **body}})[single]


def grant(project, user, role):
    S.request(f"{KS}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}", "PUT")


def identity():
    service = ensure("projects", "service", {"domain_id": "default"})
    tenant = ensure("projects", "yunshu", {"domain_id": "default",
                                           "description": "yunshu driver tests"})
    roles = {r: ensure("roles", r, {}) for r in
             ("admin", "member", "reader", "service", "load-balancer_member",
              "load-balancer_admin")}
    for u in ("nova", "placement", "glance", "neutron", "cinder", "octavia"):
        user = ensure("users", u, {"domain_id": "default", "password": SERVICE_PASS})
        grant(service, user, roles["admin"])
        grant(service, user, roles["service"])
    demo = ensure("users", "yunshu", {"domain_id": "default", "password": DEMO_PASS,
                                      "default_project_id": tenant["id"]})
    for r in ("member", "reader", "load-balancer_member"):
        grant(tenant, demo, roles[r])
    # A department with a project of its own (the driver's --tenant-project
    # 110105=yunshu-110105): the same user, a member there too.
    own = ensure("projects", "yunshu-110105", {"domain_id": "default",
                                               "description": "tenant 110105's own project"})
    for r in ("member", "reader", "load-balancer_member"):
        grant(own, demo, roles[r])

    catalog = [
        ("glance", "image", f"http://{IP}:{P['glance']}"),
        ("placement", "placement", f"http://{IP}:{P['placement']}"),
        ("nova", "compute", f"http://{IP}:{P['nova']}/v2.1"),
        ("neutron", "network", f"http://{IP}:{P['neutron']}"),
        ("cinder", "block-storage", f"http://{IP}:{P['cinder']}/v3/$(project_id)s"),
        ("cinderv3", "volumev3", f"http://{IP}:{P['cinder']}/v3/$(project_id)s"),
        ("octavia", "load-balancer", f"http://{IP}:{P['octavia']}"),
    ]
    for name, typ, url in catalog:
        svc = ensure("services", name, {"type": typ}, type=typ)
        have = ks("GET", f"/endpoints?service_id={svc['id']}")["endpoints"]
        for iface in ("public", "internal", "admin"):
            ep = [e for e in have if e["interface"] == iface]
            if ep and ep[0]["url"] != url:
                ks("PATCH", f"/endpoints/{ep[0]['id']}", json={"endpoint": {"url": url}})
            elif not ep:
                ks("POST", "/endpoints", json={"endpoint": {
                    "service_id": svc["id"], "interface": iface, "url": url,
                    "region_id": "RegionOne"}})

    def rc(user, password, project):
        return (f"export OS_AUTH_URL={KS}\nexport OS_IDENTITY_API_VERSION=3\n"
                f"export OS_USERNAME={user}\nexport OS_PASSWORD={password}\n"
                f"export OS_PROJECT_NAME={project}\nexport OS_USER_DOMAIN_ID=default\n"
                f"export OS_PROJECT_DOMAIN_ID=default\nexport OS_REGION_NAME=RegionOne\n"
                f"export OS_INTERFACE=public\n")
    with open(f"{OSH}/openrc", "w") as f:
        f.write(rc("admin", ADMIN_PASS, "admin"))
    with open(f"{OSH}/openrc.yunshu", "w") as f:
        f.write(rc("yunshu", DEMO_PASS, "yunshu"))


def api(method, service_type, path, **kw):
    r = S.request(path, method, endpoint_filter={"service_type": service_type,
                                                 "interface": "public"},
                  raise_exc=False, **kw)
    if r.status_code >= 400:
        raise SystemExit(f"{method} {service_type}{path}: {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def resources():
    flavors = [("m1.tiny", "1", 1, 512, 1), ("m1.small", "2", 1, 2048, 20),
               ("m1.medium", "3", 2, 4096, 40), ("m1.large", "4", 4, 8192, 80)]
    have = {f["name"] for f in api("GET", "compute", "/flavors?is_public=None")["flavors"]}
    for name, fid, vcpus, ram, disk in flavors:
        if name not in have:
            api("POST", "compute", "/flavors", json={"flavor": {
                "name": name, "id": fid, "vcpus": vcpus, "ram": ram, "disk": disk}})

    imgs = api("GET", "image", "/v2/images?name=fake-image")["images"]
    if not imgs or imgs[0]["status"] != "active":
        img = imgs[0] if imgs else api("POST", "image", "/v2/images", json={
            "name": "fake-image", "disk_format": "raw", "container_format": "bare",
            "visibility": "public"})
        S.request(f"/v2/images/{img['id']}/file", "PUT", data=b"\0" * 1048576,
                  headers={"Content-Type": "application/octet-stream"},
                  endpoint_filter={"service_type": "image", "interface": "public"})

    # A second Cinder volume type next to __DEFAULT__ (same fake backend): a
    # storage class the driver must turn into this type, not the default.
    types = {t["name"] for t in api("GET", "block-storage", "/types")["volume_types"]}
    if "ssd" not in types:
        api("POST", "block-storage", "/types", json={"volume_type": {
            "name": "ssd", "os-volume-type-access:is_public": True}})

    nets = api("GET", "network", "/v2.0/networks?name=public")["networks"]
    net = nets[0] if nets else api("POST", "network", "/v2.0/networks", json={"network": {
        "name": "public", "router:external": True, "shared": False,
        "provider:network_type": "flat", "provider:physical_network": "public"}})["network"]
    if not api("GET", "network", f"/v2.0/subnets?network_id={net['id']}")["subnets"]:
        api("POST", "network", "/v2.0/subnets", json={"subnet": {
            "name": "public-subnet", "network_id": net["id"], "ip_version": 4,
            "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": False,
            "allocation_pools": [{"start": "172.24.4.10", "end": "172.24.4.250"}]}})


def ready(timeout=300):
    """Until nova-compute and cinder-volume are up and the fake hypervisor is mapped."""
    import time
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            cs = api("GET", "compute", "/os-services?binary=nova-compute")["services"]
            vs = api("GET", "block-storage", "/os-services?binary=cinder-volume")["services"]
            hv = api("GET", "compute", "/os-hypervisors")["hypervisors"]
            if (any(s["state"] == "up" for s in cs) and any(s["state"] == "up" for s in vs)
                    and any(h["hypervisor_hostname"] == "yunshu-fake-1" for h in hv)):
                return
        except (SystemExit, Exception):
            pass
        time.sleep(1)
    raise SystemExit(f"not ready after {timeout} s")


if __name__ == "__main__":
    {"resources": resources, "ready": ready}.get((sys.argv[1:] or [""])[0], identity)()
