//! Reading an `/etc/pve`-like directory (a copy of the pmxcfs tree, or a simulator directory).
//!
//! [`ConfigFs::read`] loads what pve-gitops needs from such a tree:
//!
//! - `corosync.conf` as a lossless [`corosync::Document`] (syntax errors become located
//!   diagnostics, the recovered document is kept);
//! - `datacenter.cfg` as a lossless [`DatacenterDocument`] (with PVE's warnings);
//! - the pmxcfs virtual files `.members` and `.vmlist` when present;
//! - every guest config `nodes/<node>/{qemu-server,lxc}/<vmid>.conf`, found with pmxcfs's own
//!   name rules ([`parse_guest_path`]): `100.conf.bak` or `nodes/-x/...` are not guests.
//!
//! Problems in the content of a file are [`Diagnostic`]s (file named relative to the root,
//! `line:col` where known); only I/O failures are a [`ConfigFsError`]. Node directories that
//! are not in the corosync nodelist (pvecm delnode leaves them behind) are reported by
//! [`ConfigFs::stale_node_dirs`] and, when they hold guest configs, as warnings.
//!
//! [`atomic_write`] is the write side: `NAME.new` in the same directory, fsync, rename.

use crate::observed::ObservedGuest;
use pve_gitops_schema::corosync;
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::diag::Diagnostic;
use pve_gitops_schema::pmxcfs::{
    self, is_valid_node_name, parse_guest_path, GuestConfig, Members, VmList,
};
use pve_gitops_schema::spec::GuestType;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Name of the corosync configuration inside the tree.
pub const COROSYNC_CONF: &str = "corosync.conf";
/// Name of the datacenter configuration inside the tree.
pub const DATACENTER_CFG: &str = "datacenter.cfg";
/// Name of the pmxcfs membership file inside the tree.
pub const MEMBERS: &str = ".members";
/// Name of the pmxcfs guest index inside the tree.
pub const VMLIST: &str = ".vmlist";
/// Directory holding one directory per node.
pub const NODES_DIR: &str = "nodes";

/// Rule of the warning for a node directory that is not in the nodelist but holds guests.
pub const RULE_STALE_NODE_DIR: &str = "stale-node-dir";
/// Rule of the warning for a VMID whose config exists under more than one node.
pub const RULE_DUPLICATE_VMID: &str = "pmxcfs-duplicate-vmid";
/// Rule of the warning for guest configs pve-gitops does not manage (openvz).
pub const RULE_UNSUPPORTED_GUEST: &str = "unsupported-guest-type";
/// Rule of the error for a file that is not valid UTF-8.
pub const RULE_NOT_UTF8: &str = "not-utf8";

/// An I/O failure while reading a config filesystem tree; names the path and the operation.
#[derive(Debug, Error)]
pub enum ConfigFsError {
    /// The root is missing or is not a directory.
    #[error("cannot read config filesystem {}: {source}", path.display())]
    Root {
        /// The root given.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The root exists but is not a directory.
    #[error("cannot read config filesystem {}: not a directory", path.display())]
    NotADirectory {
        /// The root given.
        path: PathBuf,
    },
    /// A file exists but could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A directory exists but could not be listed.
    #[error("cannot list directory {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// One guest config found under `nodes/<node>/{qemu-server,lxc}/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGuest {
    /// The VMID (from the file name).
    pub vmid: u32,
    /// `qemu` or `lxc` (from the directory).
    pub gtype: GuestType,
    /// The node directory the config is in.
    pub node: String,
    /// The fields of the config's main section.
    pub config: GuestConfig,
    /// Full path of the config file.
    pub path: PathBuf,
}

impl FsGuest {
    /// The guest as observed, with its run state.
    pub fn observed(&self, running: bool) -> ObservedGuest {
        ObservedGuest {
            vmid: self.vmid,
            gtype: self.gtype,
            node: self.node.clone(),
            lock: self.config.lock.clone(),
            memory_mib: self.config.memory_mib.unwrap_or(0),
            running,
        }
    }
}

/// What [`ConfigFs::read`] found in an `/etc/pve`-like tree.
#[derive(Debug, Clone)]
pub struct ConfigFs {
    /// The directory that was read.
    pub root: PathBuf,
    /// `corosync.conf`: its text and the (possibly recovered) document; `None` when absent
    /// (a standalone host). Syntax errors are in [`diagnostics`](Self::diagnostics).
    pub corosync: Option<(String, corosync::Document)>,
    /// `datacenter.cfg`: its text and document; `None` when absent.
    pub datacenter: Option<(String, DatacenterDocument)>,
    /// `.members`, when present and readable.
    pub members: Option<Members>,
    /// `.vmlist`, when present and readable.
    pub vmlist: Option<VmList>,
    /// Every qemu and lxc guest config, sorted by VMID then node.
    pub guests: Vec<FsGuest>,
    /// Every directory under `nodes/` with a valid node name, sorted.
    pub node_dirs: Vec<String>,
    /// Every problem found, files named relative to the root.
    pub diagnostics: Vec<Diagnostic>,
}

/// Read a file as text: `Ok(None)` when it does not exist; non-UTF-8 is a diagnostic.
fn read_text(
    root: &Path,
    rel: &str,
    diags: &mut Vec<Diagnostic>,
) -> Result<Option<String>, ConfigFsError> {
    let path = root.join(rel);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigFsError::ReadFile { path, source }),
    };
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let loc = pve_gitops_schema::diag::Location::from_offset(&prefix, prefix.len(), 0);
            diags.push(
                Diagnostic::error(RULE_NOT_UTF8, "the file is not valid UTF-8")
                    .in_file(rel)
                    .at(Some(loc))
                    .with_help(
                        "corosync and Proxmox config files are text; remove the invalid bytes",
                    ),
            );
            Ok(Some(text))
        }
    }
}

/// The entries of a directory whose names are UTF-8 (other names can never match pmxcfs's
/// rules), unsorted; `Ok(None)` when it does not exist or is not a directory.
///
/// # Errors
///
/// The I/O error of reading the directory or one of its entries.
pub fn dir_entries(path: &Path) -> io::Result<Option<Vec<(String, fs::DirEntry)>>> {
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry));
        }
    }
    Ok(Some(out))
}

/// The entries of a directory (`Ok(None)` when it does not exist), sorted by name.
fn list_dir(path: &Path) -> Result<Option<Vec<(String, PathBuf)>>, ConfigFsError> {
    let entries = dir_entries(path).map_err(|source| ConfigFsError::ReadDir {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(entries.map(|entries| {
        let mut out: Vec<(String, PathBuf)> =
            entries.into_iter().map(|(n, e)| (n, e.path())).collect();
        out.sort();
        out
    }))
}

impl ConfigFs {
    /// Read the tree at `root`.
    ///
    /// # Errors
    ///
    /// A [`ConfigFsError`] when `root` is not a readable directory or an existing file or
    /// directory cannot be read. Missing files are not errors (`None` / empty), and problems
    /// in a file's content are [`diagnostics`](Self::diagnostics).
    pub fn read(root: &Path) -> Result<ConfigFs, ConfigFsError> {
        let meta = fs::metadata(root).map_err(|source| ConfigFsError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(ConfigFsError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        let mut diags = Vec::new();

        let corosync = read_text(root, COROSYNC_CONF, &mut diags)?.map(|text| {
            let (doc, errors) = corosync::Document::parse_recovering(COROSYNC_CONF, &text);
            diags.extend(errors);
            (text, doc)
        });

        let datacenter = read_text(root, DATACENTER_CFG, &mut diags)?.map(|text| {
            let doc = DatacenterDocument::parse(&text);
            diags.extend(
                doc.diagnostics()
                    .into_iter()
                    .map(|d| d.in_file(DATACENTER_CFG)),
            );
            (text, doc)
        });

        let members = match read_text(root, MEMBERS, &mut diags)? {
            Some(text) => match Members::parse(&text) {
                Ok(m) => Some(m),
                Err(d) => {
                    diags.push(d.in_file(MEMBERS));
                    None
                }
            },
            None => None,
        };
        let vmlist = match read_text(root, VMLIST, &mut diags)? {
            Some(text) => match VmList::parse(&text) {
                Ok(v) => Some(v),
                Err(d) => {
                    diags.push(d.in_file(VMLIST));
                    None
                }
            },
            None => None,
        };

        let (node_dirs, guests) = read_nodes(root, &mut diags)?;

        let mut fs = ConfigFs {
            root: root.to_path_buf(),
            corosync,
            datacenter,
            members,
            vmlist,
            guests,
            node_dirs,
            diagnostics: diags,
        };
        fs.report_stale();
        Ok(fs)
    }

    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics about one file (named relative to the root, e.g. `corosync.conf`).
    pub fn diagnostics_for<'a>(&'a self, file: &'a str) -> impl Iterator<Item = &'a Diagnostic> {
        self.diagnostics.iter().filter(move |d| d.file == file)
    }

    /// The node names of the cluster: the corosync nodelist (`name`, else `ring0_addr`, as
    /// pmxcfs names nodes); without corosync.conf, the `.members` node name; else `None`
    /// (the tree does not say which nodes exist).
    pub fn cluster_node_names(&self) -> Option<BTreeSet<String>> {
        if let Some((_, doc)) = &self.corosync {
            let view = doc.view();
            return Some(
                view.nodes
                    .iter()
                    .filter_map(|n| n.name.clone().or_else(|| n.rings.get(&0).cloned()))
                    .collect(),
            );
        }
        self.members
            .as_ref()
            .map(|m| std::iter::once(m.nodename.clone()).collect())
    }

    /// Node directories under `nodes/` that are not nodes of the cluster (see
    /// [`cluster_node_names`](Self::cluster_node_names)), sorted. `pvecm delnode` leaves
    /// these behind, with the guest configs of the removed node. Empty when the tree does not
    /// say which nodes exist.
    pub fn stale_node_dirs(&self) -> Vec<String> {
        let Some(names) = self.cluster_node_names() else {
            return Vec::new();
        };
        self.node_dirs
            .iter()
            .filter(|d| !names.contains(*d))
            .cloned()
            .collect()
    }

    /// The guest configs under `nodes/<node>/`.
    pub fn guests_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a FsGuest> {
        self.guests.iter().filter(move |g| g.node == node)
    }

    /// The guest with this VMID (the first, by node name, if pmxcfs would see a duplicate).
    pub fn guest(&self, vmid: u32) -> Option<&FsGuest> {
        self.guests.iter().find(|g| g.vmid == vmid)
    }

    fn report_stale(&mut self) {
        for dir in self.stale_node_dirs() {
            let held: Vec<String> = self
                .guests_on(&dir)
                .map(|g| format!("{} {}", g.gtype.as_str(), g.vmid))
                .collect();
            if held.is_empty() {
                continue;
            }
            self.diagnostics.push(
                Diagnostic::warning(
                    RULE_STALE_NODE_DIR,
                    format!(
                        "node directory {NODES_DIR}/{dir} is not a node of the cluster but holds \
                         guest configs: {}",
                        held.join(", ")
                    ),
                )
                .in_file(format!("{NODES_DIR}/{dir}"))
                .with_help(
                    "pvecm delnode leaves the directory of a removed node behind; move the \
                     guests to a cluster node or remove the stale configs",
                ),
            );
        }
    }
}

/// Walk `nodes/*/{qemu-server,lxc,openvz}/*.conf` with pmxcfs's name rules.
fn read_nodes(
    root: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Result<(Vec<String>, Vec<FsGuest>), ConfigFsError> {
    let mut node_dirs = Vec::new();
    let mut guests = Vec::new();
    let Some(entries) = list_dir(&root.join(NODES_DIR))? else {
        return Ok((node_dirs, guests));
    };
    for (node, path) in entries {
        // pmxcfs ignores directories whose name is not a valid node name.
        if !is_valid_node_name(&node) || !path.is_dir() {
            continue;
        }
        for ptype in pmxcfs::GuestType::ALL {
            let dir = path.join(ptype.dir_name());
            let Some(files) = list_dir(&dir)? else {
                continue;
            };
            for (file, fpath) in files {
                let rel = format!("{NODES_DIR}/{node}/{}/{file}", ptype.dir_name());
                let Some(gref) = parse_guest_path(&rel) else {
                    continue;
                };
                if !fpath.is_file() {
                    continue;
                }
                let gtype = match gref.gtype {
                    pmxcfs::GuestType::Qemu => GuestType::Qemu,
                    pmxcfs::GuestType::Lxc => GuestType::Lxc,
                    pmxcfs::GuestType::Openvz => {
                        diags.push(
                            Diagnostic::warning(
                                RULE_UNSUPPORTED_GUEST,
                                format!("openvz guest {} is not managed by pve-gitops", gref.vmid),
                            )
                            .in_file(rel),
                        );
                        continue;
                    }
                };
                let bytes = fs::read(&fpath).map_err(|source| ConfigFsError::ReadFile {
                    path: fpath.clone(),
                    source,
                })?;
                let config = GuestConfig::parse(&String::from_utf8_lossy(&bytes));
                guests.push(FsGuest {
                    vmid: gref.vmid,
                    gtype,
                    node: gref.node,
                    config,
                    path: fpath,
                });
            }
        }
        node_dirs.push(node);
    }
    guests.sort_by(|a, b| (a.vmid, &a.node).cmp(&(b.vmid, &b.node)));
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for g in &guests {
        if let Some(first) = seen.insert(g.vmid, &g.node) {
            diags.push(
                Diagnostic::warning(
                    RULE_DUPLICATE_VMID,
                    format!(
                        "detected duplicate VMID {} (configs under nodes/{first} and nodes/{})",
                        g.vmid, g.node
                    ),
                )
                .in_file(format!("{NODES_DIR}/{}", g.node))
                .with_help("a VMID must be unique in the cluster; remove one of the configs"),
            );
            // Keep reporting against the first one.
            seen.insert(g.vmid, first);
        }
    }
    Ok((node_dirs, guests))
}

/// Write `bytes` to `path` atomically: write `NAME.new` in the same directory, fsync it, then
/// rename it over `path` (and fsync the directory, best effort). Readers see the old or the
/// new content, never a partial file; a crash leaves at most a stale `NAME.new`.
///
/// # Errors
///
/// The I/O error of the step that failed (the `.new` file is removed on failure); an
/// `InvalidInput` error when `path` has no file name.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".new");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pve-gitops-configfs-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (rel, text) in files {
            let p = dir.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const CONF: &str = "totem {\n  cluster_name: c\n  config_version: 2\n}\nnodelist {\n  node {\n    name: a\n    nodeid: 1\n    ring0_addr: 10.0.0.1\n  }\n}\n";

    #[test]
    fn reads_guests_with_pmxcfs_rules() {
        let dir = tree(
            "guests",
            &[
                ("corosync.conf", CONF),
                ("nodes/a/qemu-server/101.conf", "name: vm\nlock: backup\n"),
                ("nodes/a/qemu-server/101.conf.bak", "name: old\n"),
                ("nodes/a/qemu-server/0102.conf", ""),
                ("nodes/a/lxc/200.conf", "hostname: ct\n"),
                ("nodes/-bad/lxc/300.conf", ""),
                ("nodes/gone/qemu-server/150.conf", ""),
                ("nodes/empty/lxc/notes.txt", ""),
            ],
        );
        let fs = ConfigFs::read(&dir).unwrap();
        let ids: Vec<(u32, &str, GuestType)> = fs
            .guests
            .iter()
            .map(|g| (g.vmid, g.node.as_str(), g.gtype))
            .collect();
        assert_eq!(
            ids,
            vec![
                (101, "a", GuestType::Qemu),
                (150, "gone", GuestType::Qemu),
                (200, "a", GuestType::Lxc)
            ]
        );
        assert_eq!(
            fs.guest(101).unwrap().config.lock.as_deref(),
            Some("backup")
        );
        assert_eq!(fs.node_dirs, vec!["a", "empty", "gone"]);
        assert_eq!(fs.stale_node_dirs(), vec!["empty", "gone"]);
        let stale: Vec<_> = fs
            .diagnostics
            .iter()
            .filter(|d| d.rule == RULE_STALE_NODE_DIR)
            .collect();
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert!(stale[0].message.contains("nodes/gone"));
        assert!(stale[0].message.contains("qemu 150"));
        assert!(!fs.has_errors());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corosync_syntax_error_is_located() {
        let dir = tree(
            "syntax",
            &[("corosync.conf", "totem {\n  cluster_name: c\n  oops\n}\n")],
        );
        let fs = ConfigFs::read(&dir).unwrap();
        let d = fs.diagnostics_for(COROSYNC_CONF).next().unwrap();
        assert!(d.is_error());
        assert_eq!(d.location.map(|l| (l.line, l.col)), Some((3, 3)));
        // The recovered document still prints back the input.
        let (text, doc) = fs.corosync.as_ref().unwrap();
        assert_eq!(&doc.to_string(), text);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_root_is_an_error() {
        let e = ConfigFs::read(Path::new("/nonexistent/pve-gitops-test")).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/pve-gitops-test"),
            "{e}"
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tree("atomic", &[("x/keep", "")]);
        let p = dir.join("x/out.yaml");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert!(!dir.join("x/out.yaml.new").exists());
        assert!(atomic_write(&dir.join("missing/dir/f"), b"x").is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
