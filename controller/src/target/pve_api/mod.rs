//! The `pve-api:https://HOST:8006` target: a Proxmox VE cluster through its REST API, for
//! running off-cluster (reference/domain.md §5). API token from a file, TLS with rustls and
//! certificate pinning (`--fingerprint`) or a CA bundle (`--ca-bundle`).
//!
//! - observe: `/cluster/status`, `/cluster/config/nodes`, `/cluster/config/totem`,
//!   `/cluster/options`, `/cluster/resources?type=vm`;
//! - apply: `PUT /cluster/options`, `POST /nodes/N/{qemu|lxc}/VMID/migrate` (task polled via
//!   `/nodes/N/tasks/UPID/status`, its log reported on failure), `DELETE
//!   /cluster/config/nodes/NAME`, `POST /cluster/config` (create) and
//!   `POST /cluster/config/join` on the host that creates / joins (`--api-node NAME=URL`).
//! - Steps the API cannot do — a runtime expected-votes override, a raw corosync.conf edit —
//!   are refused with "needs the pve node target"; they are never approximated.
//!
//! ## Limitations
//!
//! - The API gives the nodelist and totem parsed, not corosync.conf: the observed
//!   corosync.conf is rebuilt from them (`quorum {}` options and comments are not visible).
//! - No per-node running config_version: members are taken to run the cluster's.
//! - The create/join endpoints are root@pam-only in pve-cluster; whether a root@pam API
//!   token passes depends on pve-access-control — verify on a live system.
//! - Not tested against a real Proxmox VE here: against a local HTTPS server serving the
//!   documented JSON shapes.

pub mod client;
pub mod http;

use crate::observed::{Host, Observed, ObservedGuest};
use crate::plan::step::{
    CreateCluster, JoinNode, MigrateGuest, RemoveNode, SetDatacenter, Step, StepKind,
};
use crate::target::pve::gate_unsatisfied;
use crate::target::pve::parse::{
    ClusterStatusEntry, JoinInfo, ResourceEntry, TaskLogLine, TaskStatus, Upid,
};
use crate::target::{Applied, Target, TargetError, TargetOptions};
use client::{ApiClient, ApiError, Token};
use http::Trust;
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::spec::GuestType;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A cluster behind the Proxmox VE API.
#[derive(Debug)]
pub struct ApiTarget {
    api: ApiClient,
    nodes: BTreeMap<String, ApiClient>,
    manifest_nodes: Vec<String>,
    join_password_file: Option<std::path::PathBuf>,
    with_local_disks: bool,
    /// Time between task polls.
    pub poll: Duration,
    /// Longest wait for a task (a migration).
    pub task_timeout: Duration,
    local: Option<String>,
}

fn api_err(e: ApiError) -> TargetError {
    TargetError::Command {
        command: "Proxmox VE API".into(),
        message: e.to_string(),
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

/// A JSON value as the string datacenter.cfg / corosync.conf would hold.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1".into() } else { "0".into() }),
        _ => None,
    }
}

/// A parsed property string back to text: the default key (`type` for migration) first,
/// bare, then `k=v` sorted.
fn property_string(key: &str, obj: &serde_json::Map<String, Value>) -> String {
    let default_key = match key {
        "migration" | "replication" => Some("type"),
        "ha" => Some("shutdown_policy"),
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(d) = default_key.and_then(|d| obj.get(d)).and_then(scalar) {
        parts.push(d);
    }
    for (k, v) in obj {
        if Some(k.as_str()) == default_key {
            continue;
        }
        if let Some(v) = scalar(v) {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(",")
}

/// `/cluster/options` → datacenter.cfg text.
pub fn datacenter_from_options(opts: &Value) -> DatacenterDocument {
    let mut text = String::new();
    if let Some(map) = opts.as_object() {
        for (k, v) in map {
            if k == "allowed-tags" || k == "description" {
                continue;
            }
            let value = match v {
                Value::Object(o) => property_string(k, o),
                other => match scalar(other) {
                    Some(s) => s,
                    None => continue,
                },
            };
            text.push_str(&format!("{k}: {value}\n"));
        }
    }
    DatacenterDocument::parse(&text)
}

/// `/cluster/config/totem` + `/cluster/config/nodes` → a corosync.conf (without the quorum
/// options the API does not show).
pub fn corosync_from_api(totem: &Value, nodes: &[Value]) -> String {
    let mut out = String::from("totem {\n");
    if let Some(map) = totem.as_object() {
        for (k, v) in map {
            if k == "interface" {
                continue;
            }
            if let Some(v) = scalar(v) {
                out.push_str(&format!("  {k}: {v}\n"));
            }
        }
        if let Some(ifaces) = map.get("interface").and_then(Value::as_object) {
            for iface in ifaces.values() {
                out.push_str("  interface {\n");
                if let Some(m) = iface.as_object() {
                    for (k, v) in m {
                        if let Some(v) = scalar(v) {
                            out.push_str(&format!("    {k}: {v}\n"));
                        }
                    }
                }
                out.push_str("  }\n");
            }
        }
    }
    out.push_str("}\n\nnodelist {\n");
    for n in nodes {
        out.push_str("  node {\n");
        if let Some(m) = n.as_object() {
            for (k, v) in m {
                if k == "node" {
                    continue;
                }
                if let Some(v) = scalar(v) {
                    out.push_str(&format!("    {k}: {v}\n"));
                }
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n}\n");
    out
}

fn needs_node_target(step: &Step, what: &str) -> TargetError {
    TargetError::Refused {
        step: step.summary.clone(),
        reason: format!(
            "{what} needs the pve node target (run pve-gitops on a cluster node with --target pve); the API cannot do it"
        ),
    }
}

/// The API token and the TLS trust of `opts` (`--api-token-file`, `--fingerprint` /
/// `--ca-bundle`), for `who` (the pve-api target, or the pve target's `--peer`). Errors
/// never contain the token.
///
/// # Errors
/// [`TargetError::Unavailable`]: no or a malformed token file, no trust, a malformed
/// fingerprint.
pub(crate) fn credentials(opts: &TargetOptions, who: &str) -> Result<(Token, Trust), TargetError> {
    let un = TargetError::Unavailable;
    let token_file = opts.api_token_file.as_ref().ok_or_else(|| {
        un(format!(
            "{who} needs --api-token-file (USER@REALM!TOKENID=SECRET)"
        ))
    })?;
    let token = Token::from_file(token_file).map_err(un)?;
    let trust = match (&opts.fingerprints[..], &opts.ca_bundle) {
        ([], None) => {
            return Err(un(format!(
                "{who} needs --fingerprint SHA256 (as `pvecm add` shows it) or --ca-bundle PEM to trust the server"
            )))
        }
        ([], Some(ca)) => Trust::CaBundle(ca.clone()),
        (fps, _) => {
            if let Some(bad) = fps
                .iter()
                .find(|f| !crate::target::pve::parse::is_fingerprint(f))
            {
                return Err(un(format!(
                    "--fingerprint '{bad}' is not a SHA-256 fingerprint (32 hex bytes separated by ':', as `pvecm add` and the GUI show it)"
                )));
            }
            Trust::Pins(fps.to_vec())
        }
    };
    Ok((token, trust))
}

/// The address and certificate fingerprint `pvecm add` / the join API use to reach `via`,
/// from `GET /cluster/config/join` over `api`'s pinned or verified connection: nothing is
/// trusted on first use.
///
/// # Errors
/// The request failed, or the join information lacks the node or its address/fingerprint.
pub(crate) fn join_peer(
    api: &ApiClient,
    step: &Step,
    via: &str,
) -> Result<(String, String), TargetError> {
    let info: JoinInfo = api
        .get("/cluster/config/join", &[(s("node"), via.to_string())])
        .map_err(api_err)?;
    let peer = info.node(via).ok_or_else(|| TargetError::Refused {
        step: step.summary.clone(),
        reason: format!("the join information has no node {via}"),
    })?;
    match (peer.pve_addr.clone(), peer.pve_fp.clone()) {
        (Some(addr), Some(fp)) => Ok((addr, fp)),
        _ => Err(TargetError::Refused {
            step: step.summary.clone(),
            reason: format!("the join information of {via} has no pve_addr / pve_fp"),
        }),
    }
}

impl ApiTarget {
    /// Open `url` with the token, trust and per-node endpoints of `opts`.
    ///
    /// # Errors
    /// [`TargetError::Unavailable`]: no token file, no trust (fingerprint or CA bundle), a
    /// bad URL or `--api-node` value.
    pub fn open(
        url: &str,
        opts: &TargetOptions,
        cluster: &pve_gitops_schema::spec::Cluster,
    ) -> Result<ApiTarget, TargetError> {
        let un = TargetError::Unavailable;
        let (token, trust) = credentials(opts, "the pve-api target")?;
        let api = ApiClient::new(url, token.clone(), &trust).map_err(un)?;
        let mut nodes = BTreeMap::new();
        for spec in &opts.api_nodes {
            let (name, u) = spec.split_once('=').ok_or_else(|| {
                TargetError::Unavailable(format!(
                    "--api-node `{spec}`: expected NAME=https://HOST:8006"
                ))
            })?;
            nodes.insert(
                name.to_string(),
                ApiClient::new(u, token.clone(), &trust).map_err(un)?,
            );
        }
        Ok(ApiTarget {
            api,
            nodes,
            manifest_nodes: cluster.spec.nodes.iter().map(|n| n.name.clone()).collect(),
            join_password_file: opts.join_password_file.clone(),
            with_local_disks: opts.with_local_disks,
            poll: Duration::from_secs(2),
            task_timeout: Duration::from_secs(6 * 3600),
            local: None,
        })
    }

    /// A target over prepared clients (tests; the pve target's `--peer` observes through
    /// one).
    pub fn from_clients(api: ApiClient, nodes: BTreeMap<String, ApiClient>) -> ApiTarget {
        ApiTarget {
            api,
            nodes,
            manifest_nodes: Vec::new(),
            join_password_file: None,
            with_local_disks: false,
            poll: Duration::from_millis(10),
            task_timeout: Duration::from_secs(10),
            local: None,
        }
    }

    /// Set the join password file.
    pub fn join_password_file(mut self, p: Option<std::path::PathBuf>) -> ApiTarget {
        self.join_password_file = p;
        self
    }

    /// Set `--with-local-disks`.
    pub fn with_local_disks(mut self, yes: bool) -> ApiTarget {
        self.with_local_disks = yes;
        self
    }

    /// Set the manifest's node names.
    pub fn manifest_nodes(mut self, names: Vec<String>) -> ApiTarget {
        self.manifest_nodes = names;
        self
    }

    fn status(&self, api: &ApiClient) -> Result<Vec<ClusterStatusEntry>, TargetError> {
        api.get("/cluster/status", &[]).map_err(api_err)
    }

    fn guests(&self, api: &ApiClient) -> Result<Vec<ResourceEntry>, TargetError> {
        let all: Vec<ResourceEntry> = api
            .get("/cluster/resources", &[(s("type"), s("vm"))])
            .map_err(api_err)?;
        Ok(all
            .into_iter()
            .filter(|r| (r.kind == "qemu" || r.kind == "lxc") && !r.template)
            .collect())
    }

    /// Wait for task `upid` on `api`; on failure the task log's tail is the error.
    fn wait_task(&self, api: &ApiClient, what: &str, upid: &str) -> Result<(), TargetError> {
        let parsed = Upid::parse(upid).ok_or_else(|| TargetError::Command {
            command: what.into(),
            message: format!("the API returned `{upid}`, not a UPID"),
        })?;
        let base = format!("/nodes/{}/tasks/{}", parsed.node, http::urlencode(upid));
        let start = Instant::now();
        loop {
            let st: TaskStatus = api.get(&format!("{base}/status"), &[]).map_err(api_err)?;
            if st.finished() {
                if st.succeeded() {
                    return Ok(());
                }
                let log: Vec<TaskLogLine> = api
                    .get(
                        &format!("{base}/log"),
                        &[(s("start"), s("0")), (s("limit"), s("500"))],
                    )
                    .unwrap_or_default();
                let tail: Vec<&str> = log.iter().rev().take(30).map(|l| l.t.as_str()).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(TargetError::Command {
                    command: what.into(),
                    message: format!(
                        "task {upid} ended with {}: {}",
                        st.exitstatus.as_deref().unwrap_or("(no exit status)"),
                        tail.join(" / ")
                    ),
                });
            }
            if start.elapsed() >= self.task_timeout {
                return Err(TargetError::Command {
                    command: what.into(),
                    message: format!(
                        "task {upid} still running after {} s",
                        self.task_timeout.as_secs()
                    ),
                });
            }
            std::thread::sleep(self.poll);
        }
    }

    /// The API of `node`: the main one when it answers for that node, else `--api-node`.
    fn api_for(&self, node: &str) -> Option<&ApiClient> {
        if self.local.as_deref() == Some(node) {
            Some(&self.api)
        } else {
            self.nodes.get(node)
        }
    }

    fn links_params(
        links: &BTreeMap<u8, String>,
        conf: &str,
        create: bool,
    ) -> Vec<(String, String)> {
        let prio: BTreeMap<u8, Option<u8>> = Document::parse(conf)
            .map(|d| {
                d.view()
                    .totem
                    .interfaces
                    .iter()
                    .map(|(n, i)| (*n, i.knet_link_priority))
                    .collect()
            })
            .unwrap_or_default();
        links
            .iter()
            .map(|(n, a)| {
                let v = match prio.get(n).copied().flatten().filter(|p| create && *p > 0) {
                    Some(p) => format!("address={a},priority={p}"),
                    None => a.clone(),
                };
                (format!("link{n}"), v)
            })
            .collect()
    }

    fn create(&mut self, step: &Step, c: &CreateCluster) -> Result<String, TargetError> {
        let api = self
            .api_for(&c.founder)
            .ok_or_else(|| needs_endpoint(step, &c.founder))?;
        let mut params = vec![
            (s("clustername"), c.cluster_name.clone()),
            (s("nodeid"), c.nodeid.to_string()),
            (s("votes"), c.quorum_votes.to_string()),
        ];
        params.extend(Self::links_params(&c.links, &c.corosync_conf, true));
        let upid: String = api.post("/cluster/config", &params).map_err(api_err)?;
        self.wait_task(api, "POST /cluster/config", &upid)?;
        Ok(format!(
            "created cluster {} on {}",
            c.cluster_name, c.founder
        ))
    }

    fn join(&mut self, step: &Step, j: &JoinNode) -> Result<String, TargetError> {
        if j.from_version == j.to_version {
            return Err(needs_node_target(
                step,
                "starting corosync on a node that is already in the nodelist",
            ));
        }
        let joiner = self
            .nodes
            .get(&j.node)
            .ok_or_else(|| needs_endpoint(step, &j.node))?;
        let path = self
            .join_password_file
            .as_ref()
            .ok_or_else(|| TargetError::Refused {
                step: step.summary.clone(),
                reason:
                    "a join through the API needs --join-password-file (the peer's root password)"
                        .into(),
            })?;
        let password = std::fs::read_to_string(path)
            .map_err(|source| TargetError::Read {
                path: path.clone(),
                source,
            })?
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        // The peer's address and certificate fingerprint come from the cluster itself.
        let (addr, fp) = join_peer(&self.api, step, &j.via)?;
        let mut params = vec![
            (s("hostname"), addr.clone()),
            (s("password"), password),
            (s("fingerprint"), fp),
            (s("nodeid"), j.nodeid.to_string()),
            (s("votes"), j.quorum_votes.to_string()),
        ];
        params.extend(Self::links_params(&j.links, &j.corosync_conf, false));
        let upid: String = joiner
            .post("/cluster/config/join", &params)
            .map_err(api_err)?;
        // The joining node restarts pve-cluster and regenerates its certificate during the
        // task, so its API may stop answering (or present a new certificate): then watch the
        // cluster for the new member instead.
        if let Err(e) = self.wait_task(joiner, "POST /cluster/config/join", &upid) {
            if matches!(e, TargetError::Command { ref message, .. } if message.contains("ended with"))
            {
                return Err(e);
            }
            let start = Instant::now();
            loop {
                let st = self.status(&self.api)?;
                if st
                    .iter()
                    .any(|e| e.kind == "node" && e.name == j.node && e.online)
                {
                    break;
                }
                if start.elapsed() >= self.task_timeout {
                    return Err(e);
                }
                std::thread::sleep(self.poll);
            }
        }
        Ok(format!("joined {} via {} ({addr})", j.node, j.via))
    }

    fn remove(&mut self, step: &Step, r: &RemoveNode) -> Result<String, TargetError> {
        if self.local.as_deref() == Some(r.node.as_str()) {
            return Err(TargetError::Refused {
                step: step.summary.clone(),
                reason: format!(
                    "Cannot delete myself from cluster! ({} is the node behind {})",
                    r.node,
                    self.api.url()
                ),
            });
        }
        let nodes: Vec<Value> = self
            .api
            .get("/cluster/config/nodes", &[])
            .map_err(api_err)?;
        let present = nodes
            .iter()
            .any(|n| n.get("name").and_then(Value::as_str) == Some(r.node.as_str()));
        if present {
            // The step was planned from `from_version`: another controller (this target takes
            // no cluster lock) may have changed the nodelist since.
            let totem: Value = self
                .api
                .get("/cluster/config/totem", &[])
                .map_err(api_err)?;
            let live = totem
                .get("config_version")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
            if let Some(v) = live.filter(|v| *v != r.from_version) {
                return Err(TargetError::Stale {
                    step: step.summary.clone(),
                    reason: format!(
                        "corosync.conf is at config_version {v}, the step starts from {}",
                        r.from_version
                    ),
                });
            }
            let _: Value = self
                .api
                .delete(&format!(
                    "/cluster/config/nodes/{}",
                    http::urlencode(&r.node)
                ))
                .map_err(api_err)?;
        }
        let left: Vec<String> = self
            .guests(&self.api)?
            .into_iter()
            .filter(|g| g.node == r.node)
            .filter_map(|g| g.vmid.map(|v| format!("{} {v}", g.kind)))
            .collect();
        let mut msg = if present {
            format!("deleted {} from the nodelist", r.node)
        } else {
            format!("{} is not in the nodelist", r.node)
        };
        if !left.is_empty() {
            msg.push_str(&format!(
                "; /etc/pve/nodes/{} still holds guest configs ({}): delnode never removes them — move what you need, then remove the directory on a node",
                r.node,
                left.join(", ")
            ));
        }
        Ok(msg)
    }

    fn datacenter(&mut self, step: &Step, d: &SetDatacenter) -> Result<String, TargetError> {
        let opts: Value = self.api.get("/cluster/options", &[]).map_err(api_err)?;
        let current = datacenter_from_options(&opts)
            .get(&d.key)
            .map(str::to_string);
        if current == d.to {
            return Ok(format!("datacenter.cfg {} already set", d.key));
        }
        if current != d.from {
            return Err(TargetError::Stale {
                step: step.summary.clone(),
                reason: format!(
                    "{} is {}, the step was planned from {}",
                    d.key,
                    current.as_deref().unwrap_or("(unset)"),
                    d.from.as_deref().unwrap_or("(unset)")
                ),
            });
        }
        let params = match &d.to {
            Some(v) => vec![(d.key.clone(), v.clone())],
            None => vec![(s("delete"), d.key.clone())],
        };
        let _: Value = self.api.put("/cluster/options", &params).map_err(api_err)?;
        Ok(format!(
            "datacenter.cfg {}: {}",
            d.key,
            d.to.as_deref().unwrap_or("(removed)")
        ))
    }

    fn migrate(&mut self, step: &Step, m: &MigrateGuest) -> Result<String, TargetError> {
        let guests = self.guests(&self.api)?;
        let here = guests
            .iter()
            .find(|g| g.vmid == Some(u64::from(m.vmid)))
            .map(|g| g.node.clone());
        match here.as_deref() {
            Some(n) if n == m.to => {
                return Ok(format!(
                    "{} {} is already on {}",
                    m.guest_type.as_str(),
                    m.vmid,
                    m.to
                ))
            }
            Some(n) if n == m.from => {}
            other => {
                return Err(TargetError::Stale {
                    step: step.summary.clone(),
                    reason: format!(
                        "guest {} is {}",
                        m.vmid,
                        other.map_or("gone".to_string(), |n| format!("on {n}"))
                    ),
                })
            }
        }
        let kind = m.guest_type.as_str();
        let mut params = vec![(s("target"), m.to.clone())];
        match m.guest_type {
            GuestType::Qemu => {
                if m.online {
                    params.push((s("online"), s("1")));
                }
                if let Some(n) = &m.migration_network {
                    params.push((s("migration_network"), n.clone()));
                }
                if let Some(t) = &m.migration_type {
                    params.push((s("migration_type"), t.clone()));
                }
                if self.with_local_disks {
                    params.push((s("with-local-disks"), s("1")));
                }
            }
            GuestType::Lxc => {
                if m.restart {
                    params.push((s("restart"), s("1")));
                }
            }
        }
        let path = format!("/nodes/{}/{kind}/{}/migrate", m.from, m.vmid);
        let upid: String = self.api.post(&path, &params).map_err(api_err)?;
        self.wait_task(&self.api, &format!("POST {path}"), &upid)?;
        // An HA-managed guest's task only queues the migration (`hamigrate` ends at once): done
        // when the cluster shows the guest on the target node.
        let start = Instant::now();
        loop {
            let node = self
                .guests(&self.api)?
                .into_iter()
                .find(|g| g.vmid == Some(u64::from(m.vmid)))
                .map(|g| g.node);
            if node.as_deref() == Some(m.to.as_str()) {
                break;
            }
            if start.elapsed() >= self.task_timeout {
                return Err(TargetError::Refused {
                    step: step.summary.clone(),
                    reason: format!(
                        "the migration task {upid} finished, but {kind} {} is {} after {} s (an HA-managed guest is migrated by the HA manager: see `ha-manager status`)",
                        m.vmid,
                        node.map_or_else(|| "gone".to_string(), |n| format!("still on {n}")),
                        start.elapsed().as_secs()
                    ),
                });
            }
            std::thread::sleep(self.poll);
        }
        Ok(format!("migrated {kind} {} {} -> {}", m.vmid, m.from, m.to))
    }
}

fn needs_endpoint(step: &Step, node: &str) -> TargetError {
    TargetError::Refused {
        step: step.summary.clone(),
        reason: format!("this runs on {node}'s own API: add --api-node {node}=https://{node}:8006"),
    }
}

impl Target for ApiTarget {
    fn describe(&self) -> String {
        format!("pve-api:{} (Proxmox VE API)", self.api.url())
    }

    fn observe(&mut self) -> Result<Observed, TargetError> {
        let status = self.status(&self.api)?;
        self.local = status
            .iter()
            .find(|e| e.kind == "node" && e.local)
            .map(|e| e.name.clone());
        let cluster = status.iter().find(|e| e.kind == "cluster");
        let mut o = Observed::default();
        if cluster.is_some() {
            let totem: Value = self
                .api
                .get("/cluster/config/totem", &[])
                .map_err(api_err)?;
            let nodes: Vec<Value> = self
                .api
                .get("/cluster/config/nodes", &[])
                .map_err(api_err)?;
            let text = corosync_from_api(&totem, &nodes);
            o.corosync = Some(Document::parse(&text).map_err(|e| TargetError::Parse {
                path: "/cluster/config (rebuilt corosync.conf)".into(),
                message: e.to_string(),
            })?);
        }
        for e in status.iter().filter(|e| e.kind == "node") {
            o.hosts.insert(
                e.name.clone(),
                Host {
                    name: e.name.clone(),
                    online: e.online,
                    memory_mib: 0,
                    addresses: None,
                },
            );
        }
        let opts: Value = self.api.get("/cluster/options", &[]).map_err(api_err)?;
        o.datacenter = datacenter_from_options(&opts);
        let mut guests = self.guests(&self.api)?;
        // Hosts outside the cluster with their own API (to create / join).
        for (name, api) in &self.nodes {
            if o.hosts.contains_key(name) {
                continue;
            }
            let up = self.status(api).is_ok();
            o.hosts.insert(
                name.clone(),
                Host {
                    name: name.clone(),
                    online: up,
                    memory_mib: 0,
                    addresses: None,
                },
            );
            if up {
                guests.extend(self.guests(api)?.into_iter().filter(|g| &g.node == name));
            }
        }
        for name in &self.manifest_nodes {
            o.hosts.entry(name.clone()).or_insert_with(|| Host {
                name: name.clone(),
                online: false,
                memory_mib: 0,
                addresses: None,
            });
        }
        for g in guests {
            let Some(vmid) = g.vmid.and_then(|v| u32::try_from(v).ok()) else {
                continue;
            };
            let gtype = if g.kind == "qemu" {
                GuestType::Qemu
            } else {
                GuestType::Lxc
            };
            o.guests.entry(vmid).or_insert(ObservedGuest {
                vmid,
                gtype,
                node: g.node.clone(),
                lock: g.lock.clone(),
                memory_mib: g.maxmem.unwrap_or(0) / (1024 * 1024),
                running: g.status.as_deref() == Some("running"),
            });
        }
        if o.corosync.is_some() {
            o.recompute_membership();
            if let Some(c) = cluster {
                o.membership.quorate = c.quorate;
            }
            let v = o.config_version();
            o.node_config_versions = o.membership.online.iter().map(|n| (n.clone(), v)).collect();
            let names: BTreeSet<String> = o.node_votes().keys().cloned().collect();
            let with_guests: BTreeSet<String> = o.guests.values().map(|g| g.node.clone()).collect();
            o.leftover_node_dirs = with_guests
                .into_iter()
                .filter(|n| !names.contains(n) && !self.nodes.contains_key(n))
                .collect();
        } else {
            o.recompute_membership();
        }
        Ok(o)
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        let start = Instant::now();
        let message = match &step.kind {
            StepKind::CreateCluster(c) => self.create(step, c)?,
            StepKind::JoinNode(j) => self.join(step, j)?,
            StepKind::RemoveNode(r) => self.remove(step, r)?,
            StepKind::SetDatacenter(d) => self.datacenter(step, d)?,
            StepKind::MigrateGuest(m) => self.migrate(step, m)?,
            StepKind::SetExpectedVotes(_) => {
                return Err(needs_node_target(
                    step,
                    "a runtime expected-votes override (`pvecm expected`)",
                ))
            }
            StepKind::UpdateCorosync(_) => {
                return Err(needs_node_target(step, "a corosync.conf edit"))
            }
            StepKind::Wait(w) => {
                let o = self.observe()?;
                match gate_unsatisfied(&o, &w.gate) {
                    Some(why) => {
                        return Err(TargetError::Refused {
                            step: step.summary.clone(),
                            reason: format!("gate not satisfied: {why}"),
                        })
                    }
                    None => format!("gate satisfied: {}", w.gate.key()),
                }
            }
        };
        Ok(Applied {
            message,
            duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn can_run(&self, step: &Step) -> Result<(), String> {
        match &step.kind {
            StepKind::CreateCluster(c) if self.api_for(&c.founder).is_none() => Err(format!(
                "create runs on {0}'s own API: add --api-node {0}=https://{0}:8006",
                c.founder
            )),
            StepKind::JoinNode(j)
                if j.from_version != j.to_version && !self.nodes.contains_key(&j.node) =>
            {
                Err(format!(
                    "the join runs on {0}'s own API: add --api-node {0}=https://{0}:8006",
                    j.node
                ))
            }
            _ => Ok(()),
        }
    }
}
