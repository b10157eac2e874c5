//! Reading Redfish JSON: pure functions over `serde_json::Value`, so what a
//! BMC answers can be tested offline. Redfish resources are generous with
//! optional fields; a missing one is `None`/empty, never a panic.

use serde_json::Value;

/// A member link of a collection or a navigation property.
fn odata_id(v: &Value) -> Option<String> {
    v.get("@odata.id")?.as_str().map(str::to_owned)
}

/// The `Members` links of a collection.
pub fn members(collection: &Value) -> Vec<String> {
    collection
        .get("Members")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(odata_id).collect())
        .unwrap_or_default()
}

/// Where sessions are created, if the service has a SessionService.
/// `Links.Sessions` is the standard place; some BMCs only link the
/// SessionService, whose collection is then `<it>/Sessions`.
pub fn sessions_link(root: &Value) -> Option<String> {
    root.get("Links")
        .and_then(|l| l.get("Sessions"))
        .and_then(odata_id)
        .or_else(|| {
            root.get("SessionService")
                .and_then(odata_id)
                .map(|s| format!("{}/Sessions", s.trim_end_matches('/')))
        })
}

/// `PowerState` of a ComputerSystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
    /// PoweringOn / PoweringOff / Paused / absent: not settled.
    Other,
}

impl Power {
    pub fn parse(text: Option<&str>) -> Power {
        match text {
            Some("On") => Power::On,
            Some("Off") => Power::Off,
            _ => Power::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Power::On => "On",
            Power::Off => "Off",
            Power::Other => "transitioning",
        }
    }
}

/// What the driver reads of a ComputerSystem.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// `Id`, the last segment of its URI.
    pub id: String,
    /// Its URI (`/redfish/v1/Systems/<id>`).
    pub uri: String,
    pub name: String,
    pub uuid: String,
    /// `Model`; empty when the BMC does not say (sushy-tools).
    pub model: String,
    pub power: Power,
    /// `ProcessorSummary.CoreCount` when reported, else `Count`.
    pub cores: u32,
    /// `MemorySummary.TotalSystemMemoryGiB` in MiB.
    pub memory_mib: u64,
    /// The reset action's target.
    pub reset_target: String,
    /// The EthernetInterfaces collection, if any.
    pub nics_uri: Option<String>,
    /// The system's VirtualMedia collection, if any.
    pub virtual_media_uri: Option<String>,
    /// The managers of the system (`Links.ManagedBy`), where virtual media
    /// lives on most BMCs.
    pub managers: Vec<String>,
    /// `Boot.BootSourceOverrideTarget`.
    pub boot_target: String,
}

pub fn system(v: &Value) -> Option<System> {
    let uri = odata_id(v)?;
    let id = v
        .get("Id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| uri.rsplit('/').find(|s| !s.is_empty()).map(str::to_owned))?;
    let s = |path: &[&str]| -> String {
        let mut cur = v;
        for p in path {
            match cur.get(p) {
                Some(next) => cur = next,
                None => return String::new(),
            }
        }
        cur.as_str().unwrap_or_default().to_owned()
    };
    let summary = v.get("ProcessorSummary");
    let count = |field: &str| summary.and_then(|p| p.get(field)).and_then(Value::as_u64);
    let cores = count("CoreCount").or_else(|| count("Count")).unwrap_or(0);
    let memory_gib = v
        .get("MemorySummary")
        .and_then(|m| m.get("TotalSystemMemoryGiB"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let reset_target = v
        .get("Actions")
        .and_then(|a| a.get("#ComputerSystem.Reset"))
        .and_then(|r| r.get("target"))
        .and_then(Value::as_str)
        .map_or_else(
            || format!("{uri}/Actions/ComputerSystem.Reset"),
            str::to_owned,
        );
    let managers = v
        .get("Links")
        .and_then(|l| l.get("ManagedBy"))
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(odata_id).collect())
        .unwrap_or_default();
    Some(System {
        id,
        name: s(&["Name"]),
        uuid: s(&["UUID"]),
        model: s(&["Model"]),
        power: Power::parse(v.get("PowerState").and_then(Value::as_str)),
        cores: u32::try_from(cores).unwrap_or(u32::MAX),
        memory_mib: (memory_gib * 1024.0).round() as u64,
        reset_target,
        nics_uri: v.get("EthernetInterfaces").and_then(odata_id),
        virtual_media_uri: v.get("VirtualMedia").and_then(odata_id),
        managers,
        boot_target: s(&["Boot", "BootSourceOverrideTarget"]),
        uri,
    })
}

/// A manager's VirtualMedia collection.
pub fn manager_virtual_media(manager: &Value) -> Option<String> {
    manager.get("VirtualMedia").and_then(odata_id)
}

/// What the driver reads of a VirtualMedia resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub uri: String,
    pub is_cd: bool,
    pub inserted: bool,
    pub image: String,
    pub insert_target: Option<String>,
    pub eject_target: Option<String>,
}

pub fn media(v: &Value) -> Option<Media> {
    let uri = odata_id(v)?;
    let types: Vec<&str> = v
        .get("MediaTypes")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let id = v.get("Id").and_then(Value::as_str).unwrap_or_default();
    let is_cd = types.iter().any(|t| matches!(*t, "CD" | "DVD")) || id.eq_ignore_ascii_case("cd");
    let action = |name: &str| {
        v.get("Actions")
            .and_then(|a| a.get(name))
            .and_then(|r| r.get("target"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(Media {
        is_cd,
        inserted: v.get("Inserted").and_then(Value::as_bool).unwrap_or(false),
        image: v
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        insert_target: action("#VirtualMedia.InsertMedia"),
        eject_target: action("#VirtualMedia.EjectMedia"),
        uri,
    })
}

/// `MACAddress` of an EthernetInterface.
pub fn mac(v: &Value) -> Option<String> {
    v.get("MACAddress")
        .or_else(|| v.get("PermanentMACAddress"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_ascii_lowercase)
}

/// The first message of a Redfish error body, for logs and refusals.
pub fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    let extended = e
        .get("@Message.ExtendedInfo")
        .and_then(Value::as_array)
        .and_then(|i| i.first())
        .and_then(|i| i.get("Message"))
        .and_then(Value::as_str);
    extended
        .or_else(|| e.get("message").and_then(Value::as_str))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What sushy-tools 2.2 (libvirt) answers for `GET /redfish/v1/Systems/<id>`,
    /// trimmed.
    fn sushy_system() -> Value {
        json!({
            "@odata.id": "/redfish/v1/Systems/5e1f0000-0000-4000-8000-000000000000",
            "Id": "5e1f0000-0000-4000-8000-000000000000",
            "Name": "yunshu-bm-0",
            "UUID": "5e1f0000-0000-4000-8000-000000000000",
            "Manufacturer": "Sushy Emulator",
            "PowerState": "Off",
            "Boot": {"BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideTarget": "Hdd"},
            "ProcessorSummary": {"Count": 1, "Status": {"State": "Enabled"}},
            "MemorySummary": {"TotalSystemMemoryGiB": 1},
            "EthernetInterfaces": {"@odata.id": "/redfish/v1/Systems/5e1f0000-0000-4000-8000-000000000000/EthernetInterfaces"},
            "VirtualMedia": {"@odata.id": "/redfish/v1/Systems/5e1f0000-0000-4000-8000-000000000000/VirtualMedia"},
            "Links": {"ManagedBy": [{"@odata.id": "/redfish/v1/Managers/5e1f0000-0000-4000-8000-000000000000"}]},
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/5e1f0000-0000-4000-8000-000000000000/Actions/ComputerSystem.Reset"}}
        })
    }

    #[test]
    fn a_sushy_system() {
        let s = system(&sushy_system()).expect("system");
        assert_eq!(s.id, "5e1f0000-0000-4000-8000-000000000000");
        assert_eq!(s.name, "yunshu-bm-0");
        assert_eq!((s.cores, s.memory_mib), (1, 1024));
        assert_eq!(s.power, Power::Off);
        assert_eq!(s.model, "", "sushy reports no Model");
        assert_eq!(s.boot_target, "Hdd");
        assert!(s.reset_target.ends_with("/Actions/ComputerSystem.Reset"));
        assert!(s.virtual_media_uri.expect("vm").ends_with("/VirtualMedia"));
        assert_eq!(s.managers.len(), 1);
    }

    #[test]
    fn a_real_bmc_system_and_missing_fields() {
        let v = json!({
            "@odata.id": "/redfish/v1/Systems/1",
            "Model": "R4900 G5",
            "PowerState": "PoweringOn",
            "ProcessorSummary": {"Count": 2, "CoreCount": 56},
            "MemorySummary": {"TotalSystemMemoryGiB": 511.5}
        });
        let s = system(&v).expect("system");
        assert_eq!(s.id, "1", "Id from the URI when absent");
        assert_eq!(s.cores, 56, "CoreCount before Count");
        assert_eq!(s.memory_mib, 523_776);
        assert_eq!(s.power, Power::Other);
        assert_eq!(
            s.reset_target,
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
        );
        assert!(system(&json!({"Id": "x"})).is_none(), "no URI, no system");
    }

    #[test]
    fn sessions_or_basic() {
        let sushy_root =
            json!({"@odata.id": "/redfish/v1/", "Systems": {"@odata.id": "/redfish/v1/Systems"}});
        assert_eq!(sessions_link(&sushy_root), None);
        let bmc =
            json!({"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}});
        assert_eq!(
            sessions_link(&bmc).as_deref(),
            Some("/redfish/v1/SessionService/Sessions")
        );
        let only_service = json!({"SessionService": {"@odata.id": "/redfish/v1/SessionService/"}});
        assert_eq!(
            sessions_link(&only_service).as_deref(),
            Some("/redfish/v1/SessionService/Sessions")
        );
    }

    #[test]
    fn virtual_media_and_collections() {
        let cd = json!({
            "@odata.id": "/redfish/v1/Systems/x/VirtualMedia/Cd", "Id": "Cd",
            "MediaTypes": ["CD", "DVD"], "Inserted": true, "Image": "http://m/a.iso",
            "Actions": {"#VirtualMedia.InsertMedia": {"target": "/redfish/v1/Systems/x/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia"},
                        "#VirtualMedia.EjectMedia": {"target": "/redfish/v1/Systems/x/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia"}}
        });
        let m = media(&cd).expect("media");
        assert!(m.is_cd && m.inserted);
        assert_eq!(m.image, "http://m/a.iso");
        assert!(m.eject_target.expect("eject").ends_with("EjectMedia"));
        let floppy =
            json!({"@odata.id": "/f", "Id": "Floppy", "MediaTypes": ["Floppy", "USBStick"]});
        assert!(!media(&floppy).expect("media").is_cd);
        let col = json!({"Members": [{"@odata.id": "/a"}, {"@odata.id": "/b"}, {"bad": 1}]});
        assert_eq!(members(&col), vec!["/a", "/b"]);
        assert_eq!(
            mac(&json!({"MACAddress": "52:54:00:5E:1F:00"})).as_deref(),
            Some("52:54:00:5e:1f:00")
        );
    }

    #[test]
    fn error_bodies() {
        let e = json!({"error": {"code": "Base.1.0.GeneralError", "message": "general",
            "@Message.ExtendedInfo": [{"Message": "Boot source not allowed"}]}});
        assert_eq!(
            error_message(&e).as_deref(),
            Some("Boot source not allowed")
        );
        assert_eq!(
            error_message(&json!({"error": {"message": "m"}})).as_deref(),
            Some("m")
        );
        assert_eq!(error_message(&json!({})), None);
    }
}
