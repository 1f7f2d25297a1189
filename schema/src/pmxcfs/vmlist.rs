//! `/etc/pve/.vmlist` (pmxcfs `status.c` `cfs_create_vmlist_msg`).

use super::json::{get_str, get_u64, parse_object, quote, shape};
use super::names::{GuestRef, GuestType};
use crate::diag::Diagnostic;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const RULE: &str = "pmxcfs-vmlist";
const FILE: &str = ".vmlist";

/// The content of `/etc/pve/.vmlist`: where every guest's config lives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VmList {
    /// pmxcfs's vmlist change counter.
    pub version: u64,
    /// Guests by VMID.
    pub ids: BTreeMap<u32, VmEntry>,
}

/// One guest of `.vmlist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmEntry {
    /// The node whose directory holds the config.
    pub node: String,
    /// The guest type.
    #[serde(rename = "type")]
    pub vtype: GuestType,
    /// The config file's memdb version.
    pub version: u64,
}

impl VmList {
    /// Parse `.vmlist`. Accepts any JSON layout and key order; `ids` may be absent (no guests).
    pub fn parse(src: &str) -> Result<VmList, Diagnostic> {
        let root = parse_object(src, RULE, FILE)?;
        let version = get_u64(&root, "version", RULE, FILE, "")?;
        let mut ids = BTreeMap::new();
        match root.get("ids") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(m)) => {
                for (k, v) in m {
                    let path = format!("ids.{k}");
                    let vmid: u32 = k
                        .parse()
                        .ok()
                        .filter(|n| *n > 0 && !k.starts_with(['0', '+']))
                        .ok_or_else(|| shape(RULE, FILE, &path, "is not a VMID"))?;
                    let serde_json::Value::Object(e) = v else {
                        return Err(shape(RULE, FILE, &path, "is not an object"));
                    };
                    let p = format!("{path}.");
                    let t = get_str(e, "type", RULE, FILE, &p)?;
                    let vtype = t.parse::<GuestType>().map_err(|msg| {
                        shape(
                            RULE,
                            FILE,
                            &format!("{p}type"),
                            &format!("is invalid: {msg}"),
                        )
                    })?;
                    ids.insert(
                        vmid,
                        VmEntry {
                            node: get_str(e, "node", RULE, FILE, &p)?,
                            vtype,
                            version: get_u64(e, "version", RULE, FILE, &p)?,
                        },
                    );
                }
            }
            Some(_) => return Err(shape(RULE, FILE, "ids", "is not an object")),
        }
        Ok(VmList { version, ids })
    }

    /// Build the list pmxcfs would from guest config files, each with its memdb version,
    /// in the order pmxcfs meets them. A VMID seen twice keeps its first entry and gives a
    /// `pmxcfs-duplicate-vmid` warning `detected duplicate VMID <n>`, as pmxcfs logs it.
    pub fn from_guests(
        version: u64,
        guests: impl IntoIterator<Item = (GuestRef, u64)>,
    ) -> (VmList, Vec<Diagnostic>) {
        let mut list = VmList {
            version,
            ids: BTreeMap::new(),
        };
        let mut diags = Vec::new();
        for (g, v) in guests {
            if list.ids.contains_key(&g.vmid) {
                diags.push(
                    Diagnostic::warning(
                        "pmxcfs-duplicate-vmid",
                        format!("detected duplicate VMID {}", g.vmid),
                    )
                    .at_path(g.config_path()),
                );
                continue;
            }
            list.ids.insert(
                g.vmid,
                VmEntry {
                    node: g.node,
                    vtype: g.gtype,
                    version: v,
                },
            );
        }
        (list, diags)
    }

    /// Render in pmxcfs's exact byte layout, VMIDs ascending (pmxcfs uses hash order,
    /// which readers must not depend on). Empty: `{\n"version": N\n\n}\n`.
    pub fn render(&self) -> String {
        let mut s = String::from("{\n");
        let _ = write!(s, "\"version\": {}", self.version);
        if !self.ids.is_empty() {
            s.push_str(",\n\"ids\": {\n");
            for (i, (vmid, e)) in self.ids.iter().enumerate() {
                if i > 0 {
                    s.push_str(",\n");
                }
                let _ = write!(
                    s,
                    "\"{vmid}\": {{ \"node\": {}, \"type\": \"{}\", \"version\": {} }}",
                    quote(&e.node),
                    e.vtype,
                    e.version
                );
            }
            s.push('}');
        }
        s.push_str("\n\n}\n");
        s
    }
}
