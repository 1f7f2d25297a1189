//! Helpers shared by the controller's integration tests: temporary directories, copying and
//! snapshotting trees, running the binary, plan steps.

#![allow(dead_code)]

pub mod https;

use pve_gitops::plan::step::{MigrateGuest, RemoveNode, SetDatacenter, Step, StepKind};
use pve_gitops_schema::spec::GuestType;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory `pve-gitops-<tag>-<pid>-<n>`, removed on drop.
pub struct Tmp(pub PathBuf);

impl Tmp {
    fn under(base: &Path, tag: &str) -> Tmp {
        let p = base.join(format!(
            "pve-gitops-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        Tmp(p)
    }

    /// A fresh, empty directory.
    pub fn new(tag: &str) -> Tmp {
        let t = Tmp::under(&std::env::temp_dir(), tag);
        fs::create_dir_all(&t.0).unwrap();
        t
    }

    /// A fresh path on tmpfs (`/dev/shm`) when there is one, not created yet.
    pub fn on_tmpfs(tag: &str) -> Tmp {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        Tmp::under(&base, tag)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The text of `rel`; panics when it cannot be read.
    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.0.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Write `rel` (creating its directories); returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `tests/fixtures/<rel>`.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The text of `tests/fixtures/<rel>`; panics when it cannot be read.
pub fn read_fixture(rel: &str) -> String {
    let p = fixture_path(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Copy the tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Every file and directory under `dir` with its content (directories: `<rel>/`, empty).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The `pve-gitops` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pve-gitops"))
}

/// A finished command's standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished command's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A step of the test plan.
pub fn step(kind: StepKind, node: &str) -> Step {
    Step::new(kind, node, "test")
}

/// On `node`, set datacenter.cfg `key` from `from` to `to` (None: unset).
pub fn datacenter_step(node: &str, key: &str, from: Option<&str>, to: Option<&str>) -> Step {
    step(
        StepKind::SetDatacenter(SetDatacenter {
            key: key.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }),
        node,
    )
}

/// Remove `pve3` through `pve1`, config_version 5 -> 6.
pub fn remove_pve3_step() -> Step {
    step(
        StepKind::RemoveNode(RemoveNode {
            node: "pve3".into(),
            via: "pve1".into(),
            from_version: 5,
            to_version: 6,
            corosync_conf: String::new(),
        }),
        "pve3",
    )
}

/// Migrate qemu guest 100 online from `pve1` to `pve2`, with the migration network and type.
pub fn migrate_step(network: Option<&str>, mtype: Option<&str>) -> Step {
    step(
        StepKind::MigrateGuest(MigrateGuest {
            vmid: 100,
            guest_type: GuestType::Qemu,
            from: "pve1".into(),
            to: "pve2".into(),
            online: true,
            restart: false,
            migration_network: network.map(Into::into),
            migration_type: mtype.map(Into::into),
        }),
        "pve1",
    )
}
