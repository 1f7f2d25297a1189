//! pmxcfs name rules, guest config reading and the simulator's edits, lock ids.

use proptest::prelude::*;
use pve_gitops_schema::pmxcfs::{
    is_valid_node_name, lock_id_for_file, lock_id_for_storage, lock_path, parse_guest_path,
    remove_lock, set_lock, vmid_from_config_name, GuestConfig, GuestRef, GuestType,
};
use std::path::Path;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pmxcfs")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn node_names_follow_ldh() {
    for ok in ["pve", "pve1", "PVE-1", "a", "1", "a-b-c", "a--b", "0node"] {
        assert!(is_valid_node_name(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "-", "a.b", "a_b", "a b", "pvé", "a/b"] {
        assert!(!is_valid_node_name(bad), "{bad}");
    }
}

#[test]
fn config_file_names() {
    assert_eq!(vmid_from_config_name("100.conf"), Some(100));
    assert_eq!(vmid_from_config_name("1.conf"), Some(1));
    assert_eq!(vmid_from_config_name("4294967295.conf"), Some(u32::MAX));
    for bad in [
        "4294967296.conf",
        "0.conf",
        "0100.conf",
        "100.conf.bak",
        "100.conf.tmp.1234",
        ".conf",
        "100.Conf",
        "+100.conf",
        "1a.conf",
        "100",
        "",
    ] {
        assert_eq!(vmid_from_config_name(bad), None, "{bad}");
    }
}

#[test]
fn guest_paths() {
    let g = |node: &str, gtype, vmid| {
        Some(GuestRef {
            node: node.into(),
            gtype,
            vmid,
        })
    };
    assert_eq!(
        parse_guest_path("nodes/pve1/qemu-server/100.conf"),
        g("pve1", GuestType::Qemu, 100)
    );
    assert_eq!(
        parse_guest_path("nodes/pve-2/lxc/104.conf"),
        g("pve-2", GuestType::Lxc, 104)
    );
    assert_eq!(
        parse_guest_path("/nodes/old/openvz/999.conf"),
        g("old", GuestType::Openvz, 999)
    );
    for bad in [
        "nodes/pve1/qemu-server/100.conf.bak",
        "nodes/pve1/qemu-server/100.conf.tmp.42",
        "nodes/pve1/qemu-server/0100.conf",
        "nodes/pve1/qemu/100.conf",
        "nodes/-pve/lxc/100.conf",
        "nodes/pve_1/lxc/100.conf",
        "nodes//lxc/100.conf",
        "nodes/pve1/lxc/sub/100.conf",
        "nodes/pve1/lxc",
        "qemu-server/100.conf",
        "node/pve1/lxc/100.conf",
        "nodes/pve1/lxc/100.conf/",
        "",
    ] {
        assert_eq!(parse_guest_path(bad), None, "{bad}");
    }
    let r = GuestRef {
        node: "pve1".into(),
        gtype: GuestType::Qemu,
        vmid: 100,
    };
    assert_eq!(r.config_path(), "nodes/pve1/qemu-server/100.conf");
    assert_eq!(parse_guest_path(&r.config_path()), Some(r));
}

#[test]
fn qemu_config_main_section_only() {
    let c = GuestConfig::parse(&fixture("qemu_locked_with_snapshot.conf"));
    assert_eq!(c.lock.as_deref(), Some("backup"));
    assert_eq!(c.memory_mib, Some(4096));
    assert_eq!(c.cores, Some(4));
    assert_eq!(c.name.as_deref(), Some("web01"));
    assert_eq!(c.hostname, None);
    assert_eq!(c.display_name(), Some("web01"));
    assert_eq!(
        c.description,
        vec!["Production%20web%20server", "second line"]
    );
}

#[test]
fn snapshot_lock_does_not_count() {
    let c = GuestConfig::parse(&fixture("lxc_with_snapshot_lock.conf"));
    assert_eq!(c.lock, None);
    assert_eq!(c.hostname.as_deref(), Some("ct01"));
    assert_eq!(c.memory_mib, Some(512));
    assert_eq!(c.cores, Some(1));
    let c = GuestConfig::parse("memory: 1024\n[PENDING]\nlock: migrate\n");
    assert_eq!(c.lock, None);
    let c = GuestConfig::parse("memory: 1024\n[special:cloudinit]\nlock: migrate\n");
    assert_eq!(c.lock, None);
}

#[test]
fn crlf_and_qemu_memory_property_string() {
    let c = GuestConfig::parse(&fixture("qemu_crlf.conf"));
    assert_eq!(c.memory_mib, Some(2048));
    assert_eq!(c.cores, Some(2));
    assert_eq!(c.name.as_deref(), Some("win"));
}

#[test]
fn tolerant_parsing() {
    let c = GuestConfig::parse(
        "garbage line\n  lock: indented-is-not-a-key\ncores: many\nmemory: lots\n\
         lock:\nUPPER: x\n[not a section]\nlock:   migrate   \ncores: 2\ncores: 3\n",
    );
    assert_eq!(c.lock.as_deref(), Some("migrate"));
    assert_eq!(c.cores, Some(3));
    assert_eq!(c.memory_mib, None);
    assert_eq!(GuestConfig::parse(""), GuestConfig::default());
}

#[test]
fn set_lock_replaces_in_place() {
    let src = fixture("qemu_locked_with_snapshot.conf");
    let out = set_lock(&src, "migrate").unwrap();
    assert_eq!(out, src.replacen("lock: backup\n", "lock: migrate\n", 1));
    assert_eq!(GuestConfig::parse(&out).lock.as_deref(), Some("migrate"));
    assert!(out.contains("lock: snapshot\n"));
}

#[test]
fn set_lock_inserts_at_end_of_main_section() {
    let src = fixture("lxc_with_snapshot_lock.conf");
    let out = set_lock(&src, "migrate").unwrap();
    assert_eq!(
        out,
        src.replacen(
            "swap: 512\n\n[snap1]",
            "swap: 512\nlock: migrate\n\n[snap1]",
            1
        )
    );
    assert_eq!(set_lock("", "migrate").unwrap(), "lock: migrate\n");
    assert_eq!(
        set_lock("cores: 1", "migrate").unwrap(),
        "cores: 1\nlock: migrate"
    );
    assert_eq!(
        set_lock("cores: 1\r\nmemory: 5\r\n", "backup").unwrap(),
        "cores: 1\r\nmemory: 5\r\nlock: backup\r\n"
    );
    assert_eq!(
        set_lock("[snap]\nlock: snapshot\n", "migrate").unwrap(),
        "lock: migrate\n[snap]\nlock: snapshot\n"
    );
    assert!(set_lock("cores: 1\n", "bad value").is_err());
    assert!(set_lock("cores: 1\n", "").is_err());
    assert!(set_lock("cores: 1\n", "x\ny").is_err());
}

#[test]
fn remove_lock_keeps_snapshots() {
    let src = fixture("qemu_locked_with_snapshot.conf");
    let out = remove_lock(&src);
    assert_eq!(out, src.replacen("lock: backup\n", "", 1));
    assert_eq!(GuestConfig::parse(&out).lock, None);
    assert!(out.contains("lock: snapshot\n"));
    assert!(out.contains("[PENDING]\nlock: migrate\n"));
    assert_eq!(remove_lock("cores: 1\nlock: migrate"), "cores: 1");
    assert_eq!(remove_lock("cores: 1\r\nlock: migrate"), "cores: 1");
    assert_eq!(remove_lock("cores: 1\n"), "cores: 1\n");
    assert_eq!(
        remove_lock(&set_lock("cores: 1\n", "migrate").unwrap()),
        "cores: 1\n"
    );
}

#[test]
fn render_minimal_configs() {
    assert_eq!(
        GuestConfig::render_minimal(GuestType::Qemu, 2048, 2, Some("web01")).unwrap(),
        "cores: 2\nmemory: 2048\nname: web01\n"
    );
    assert_eq!(
        GuestConfig::render_minimal(GuestType::Lxc, 512, 1, Some("ct.example.com")).unwrap(),
        "cores: 1\nhostname: ct.example.com\nmemory: 512\n"
    );
    assert_eq!(
        GuestConfig::render_minimal(GuestType::Qemu, 1024, 1, None).unwrap(),
        "cores: 1\nmemory: 1024\n"
    );
    assert!(GuestConfig::render_minimal(GuestType::Qemu, 1024, 1, Some("bad name")).is_err());
    assert!(GuestConfig::render_minimal(GuestType::Qemu, 1024, 1, Some("a\nlock: x")).is_err());
    assert!(GuestConfig::render_minimal(GuestType::Qemu, 1024, 0, None).is_err());
    let c = GuestConfig::parse(
        &GuestConfig::render_minimal(GuestType::Lxc, 512, 3, Some("ct1")).unwrap(),
    );
    assert_eq!(
        (c.memory_mib, c.cores, c.hostname.as_deref(), c.lock),
        (Some(512), Some(3), Some("ct1"), None)
    );
}

#[test]
fn lock_ids() {
    assert_eq!(lock_id_for_file("corosync.conf"), "file-corosync_conf");
    assert_eq!(lock_id_for_file("datacenter.cfg"), "file-datacenter_cfg");
    assert_eq!(lock_id_for_file("priv/shadow.cfg"), "file-priv_shadow_cfg");
    assert_eq!(lock_id_for_storage("local"), "storage-local");
    assert_eq!(
        lock_path("file-corosync_conf"),
        "priv/lock/file-corosync_conf"
    );
}

proptest! {
    #[test]
    fn lock_edits_never_panic_and_keep_other_lines(
        lines in prop::collection::vec(prop_oneof![
            "[a-z]{1,6}: [a-z0-9]{1,6}",
            "lock: [a-z]{1,8}",
            "\\[[a-z]{2,6}\\]",
            "#[ -~]{0,8}",
            "[ -~]{0,10}",
            "",
        ], 0..10),
        crlf in any::<bool>(),
        final_nl in any::<bool>(),
        lock in "[a-z][a-z-]{0,10}",
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut src = lines.join(eol);
        if final_nl && !src.is_empty() {
            src.push_str(eol);
        }
        let set = set_lock(&src, &lock).unwrap();
        prop_assert_eq!(GuestConfig::parse(&set).lock, Some(lock.clone()));
        let removed = remove_lock(&set);
        prop_assert_eq!(GuestConfig::parse(&removed).lock, None);
        let before = GuestConfig::parse(&src);
        let after = GuestConfig::parse(&removed);
        prop_assert_eq!(
            (before.memory_mib, before.cores, before.name, before.description),
            (after.memory_mib, after.cores, after.name, after.description)
        );
        // Removing the lock from a config that has none changes nothing.
        prop_assert_eq!(remove_lock(&removed), removed.clone());
    }

    #[test]
    fn guest_parsers_never_panic(s in "\\PC{0,80}") {
        let _ = GuestConfig::parse(&s);
        let _ = remove_lock(&s);
        let _ = set_lock(&s, "migrate");
        let _ = parse_guest_path(&s);
        let _ = is_valid_node_name(&s);
    }
}
