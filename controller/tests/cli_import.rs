//! `pve-gitops import --config-fs DIR`: fixture trees, warnings, exit codes, the real-file corpus.

mod common;

use common::{bin, stderr, stdout, Tmp};
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::spec::{
    Cluster, GuestType, IpVersion, LinkSettings, MigrationType, RrpMode, Transport,
};
use pve_gitops_schema::validate::validate_documents;
use std::path::{Path, PathBuf};
use std::process::Output;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/configfs")
        .join(name)
}

fn import(dir: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("import")
        .arg("--config-fs")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// Validate `yaml` like `pve-gitops validate`; panic on errors; return the typed manifest.
fn valid_cluster(yaml: &str) -> Cluster {
    let reports = validate_documents("imported.yaml", yaml);
    assert_eq!(reports.len(), 1, "{yaml}");
    let errors: Vec<_> = reports[0]
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(Some(yaml)))
        .collect();
    assert!(errors.is_empty(), "{}\n{yaml}", errors.join("\n"));
    reports[0].cluster.clone().unwrap()
}

/// (name, nodeid, votes, rings) of one node.
type NodeSummary = (String, u32, u32, Vec<(u8, String)>);

/// The summary of every node.
fn nodes(c: &Cluster) -> Vec<NodeSummary> {
    c.spec
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.nodeid,
                n.quorum_votes,
                n.rings().map(|(l, a)| (l, a.to_string())).collect(),
            )
        })
        .collect()
}

fn rings(addrs: &[&str]) -> Vec<(u8, String)> {
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u8, a.to_string()))
        .collect()
}

#[test]
fn knet_three_nodes_with_guests_and_migration() {
    let dir = fixture("knet3");
    let o = import(&dir, &[]);
    let out = stdout(&o);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.starts_with("# yaml-language-server: $schema=")
            && out.lines().next().unwrap().ends_with("cluster.schema.json"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "# Imported by `pve-gitops import` from {}/corosync.conf (config_version 7)",
            dir.display()
        )),
        "{out}"
    );
    // The only setting the manifest cannot hold: a datacenter.cfg key.
    assert!(
        out.contains("# WARNING: datacenter.cfg: key keyboard is not represented"),
        "{out}"
    );
    assert!(
        err.contains("warning: datacenter.cfg: key keyboard is not represented"),
        "{err}"
    );
    assert_eq!(out.matches("# WARNING:").count(), 1, "{out}");
    // Default votes are omitted, other votes kept.
    assert_eq!(out.matches("quorum_votes").count(), 1, "{out}");

    let c = valid_cluster(&out);
    assert_eq!(c.metadata.name, "prod-east");
    let t = &c.spec.totem;
    assert_eq!(t.transport, Transport::Knet);
    assert_eq!(t.rrp_mode, Some(RrpMode::Passive));
    assert_eq!(t.ip_version, IpVersion::Ipv4Then6);
    assert!(t.secauth);
    assert_eq!(t.token_coefficient, Some(125));
    assert_eq!(
        t.links,
        vec![LinkSettings {
            number: 1,
            priority: Some(20),
            bindnetaddr: None
        }]
    );
    assert_eq!(
        nodes(&c),
        vec![
            ("pve1".into(), 1, 1, rings(&["10.10.10.1", "10.10.20.1"])),
            ("pve2".into(), 2, 1, rings(&["10.10.10.2", "10.10.20.2"])),
            ("pve3".into(), 3, 2, rings(&["10.10.10.3", "10.10.20.3"])),
        ]
    );
    assert!(c.spec.quorum.is_empty());
    let m = c.spec.migration.as_ref().unwrap();
    assert_eq!(m.mtype, Some(MigrationType::Secure));
    assert_eq!(m.network, Some("10.1.2.0/24".parse().unwrap()));
    assert_eq!(m.max_workers, Some(4));
    assert_eq!(m.bandwidth_limit, Some(512000));
    let guests: Vec<(u32, GuestType, &str, bool)> = c
        .spec
        .guests
        .iter()
        .map(|g| (g.vmid, g.gtype, g.node.as_str(), g.online))
        .collect();
    assert_eq!(
        guests,
        vec![
            (101, GuestType::Qemu, "pve1", true),
            (105, GuestType::Lxc, "pve3", true),
            (110, GuestType::Qemu, "pve2", true),
        ]
    );

    // Re-importing is stable.
    let again = import(&dir, &[]);
    assert_eq!(stdout(&again), out);
}

#[test]
fn output_file_is_written_and_validates_with_the_cli() {
    let s = Tmp::new("cli-import-out");
    let path = s.0.join("cluster.yaml");
    let o = import(&fixture("knet3"), &["-o", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing on stdout with -o");
    assert!(!s.0.join("cluster.yaml.new").exists());
    let written = std::fs::read_to_string(&path).unwrap();
    let direct = import(&fixture("knet3"), &[]);
    assert_eq!(written, stdout(&direct));
    let v = bin().arg("validate").arg(&path).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
}

#[test]
fn corosync2_udpu_with_rrp() {
    let o = import(&fixture("cs2-udpu"), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // udpu, rrp_mode, ringnumber and bindnetaddr are all represented: no warnings.
    assert!(!out.contains("# WARNING"), "{out}");
    let c = valid_cluster(&out);
    assert_eq!(c.metadata.name, "legacy");
    let t = &c.spec.totem;
    assert_eq!(t.transport, Transport::Udpu);
    assert_eq!(t.rrp_mode, Some(RrpMode::Passive));
    assert_eq!(t.ip_version, IpVersion::Ipv4);
    assert!(t.secauth);
    assert_eq!(t.token_coefficient, None);
    let links: Vec<(u8, Option<String>, Option<u8>)> = t
        .links
        .iter()
        .map(|l| (l.number, l.bindnetaddr.map(|a| a.to_string()), l.priority))
        .collect();
    assert_eq!(
        links,
        vec![
            (0, Some("192.168.1.0".into()), None),
            (1, Some("192.168.2.0".into()), None)
        ]
    );
    assert_eq!(
        nodes(&c),
        vec![
            (
                "alpha".into(),
                1,
                1,
                rings(&["192.168.1.11", "192.168.2.11"])
            ),
            (
                "beta".into(),
                2,
                1,
                rings(&["192.168.1.12", "192.168.2.12"])
            ),
            (
                "gamma".into(),
                3,
                1,
                rings(&["192.168.1.13", "192.168.2.13"])
            ),
        ]
    );
    assert_eq!(c.spec.quorum.wait_for_all, Some(true));
    assert_eq!(c.spec.quorum.two_node, None);
    assert_eq!(c.spec.quorum.expected_votes, None);
    assert!(c.spec.migration.is_none());
    assert_eq!(c.spec.guests.len(), 1);
    assert_eq!(c.spec.guests[0].node, "alpha");
}

#[test]
fn stale_node_dir_and_qdevice_are_warnings() {
    let o = import(&fixture("stale"), &[]);
    let out = stdout(&o);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for w in [
        "quorum.device (qdevice) is not represented",
        "quorum.expected_votes: 4 is kept in corosync.conf but not represented",
        "quorum.last_man_standing is not represented",
        "totem.token: 5000 is not represented",
        "logging settings (to_logfile: yes, logfile: /var/log/corosync/corosync.log)",
        "bwlimit `clone=1000` is not represented",
        "key crs is not represented",
        "nodes/old: lxc guest 300 is under a node directory that is not in the nodelist; not imported",
        "nodes/gone: node directory of a node that is not in the nodelist",
    ] {
        assert!(out.contains(&format!("# WARNING: corosync.conf: {w}")) || out.contains(&format!("# WARNING: datacenter.cfg: {w}")) || out.contains(&format!("# WARNING: {w}")), "comment for {w:?}:\n{out}");
        assert!(err.contains(w), "stderr for {w:?}:\n{err}");
    }
    assert!(err.contains("warning[stale-node-dir]: node directory nodes/old is not a node of the cluster but holds guest configs: lxc 300"), "{err}");
    // Warnings come before the document.
    let first_doc_line = out.find("apiVersion:").unwrap();
    assert!(out.rfind("# WARNING").unwrap() < first_doc_line);

    let c = valid_cluster(&out);
    assert_eq!(c.metadata.name, "edge");
    assert_eq!(
        c.spec.quorum.expected_votes, None,
        "runtime-only field is never imported"
    );
    let ids: Vec<u32> = c.spec.guests.iter().map(|g| g.vmid).collect();
    assert_eq!(ids, vec![100, 101]);
    let m = c.spec.migration.unwrap();
    assert_eq!(m.mtype, Some(MigrationType::Insecure));
    assert_eq!(m.bandwidth_limit, Some(2000));
    assert_eq!(m.max_workers, None);
}

#[test]
fn not_a_cluster_config_filesystem() {
    let s = Tmp::new("cli-import-standalone");
    s.write("datacenter.cfg", "keyboard: de\n");
    let o = import(&s.0, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let expected = format!(
        "not a cluster config filesystem: {}/corosync.conf missing; for a standalone host, write the manifest by hand",
        s.0.display()
    );
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));

    let o = import(&s.0.join("does-not-exist"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does-not-exist"), "{}", stderr(&o));
}

#[test]
fn corosync_syntax_errors_are_located_and_fatal() {
    let s = Tmp::new("cli-import-syntax");
    s.write("corosync.conf", "totem {\n  cluster_name: x\n  what\n}\n");
    let out_file = s.0.join("out.yaml");
    let o = import(&s.0, &["-o", out_file.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--> corosync.conf:3:3"), "{err}");
    assert!(err.contains("3 |   what"), "{err}");
    assert!(!out_file.exists(), "nothing written");
}

#[test]
fn what_the_manifest_cannot_hold_is_an_error_not_a_guess() {
    let s = Tmp::new("cli-import-noname");
    s.write(
        "corosync.conf",
        "totem {\n  cluster_name: c\n  config_version: 1\n  secauth: on\n}\nnodelist {\n  node {\n    nodeid: 1\n    ring0_addr: 10.0.0.1\n  }\n}\nquorum {\n  provider: corosync_votequorum\n}\n",
    );
    let o = import(&s.0, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("nodelist.node[0] (10.0.0.1) has no name"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corosync2_nodeid_derived_from_ipv4_with_warning() {
    let s = Tmp::new("cli-import-cs2id");
    s.write(
        "corosync.conf",
        "totem {\n  version: 2\n  cluster_name: old\n  config_version: 2\n  transport: udpu\n  interface {\n    ringnumber: 0\n    bindnetaddr: 10.0.0.0\n  }\n}\nnodelist {\n  node {\n    name: a\n    ring0_addr: 10.0.0.1\n  }\n  node {\n    name: b\n    nodeid: 7\n    ring0_addr: 10.0.0.2\n  }\n}\nquorum {\n  provider: corosync_votequorum\n}\n",
    );
    let o = import(&s.0, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.contains("node `a` has no nodeid; imported as 167772161"),
        "{out}"
    );
    let c = valid_cluster(&out);
    let ids: Vec<(String, u32)> = c
        .spec
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.nodeid))
        .collect();
    assert_eq!(ids, vec![("b".into(), 7), ("a".into(), 167772161)]);
}

/// Every corpus file corosync would accept that names its nodes: the import validates, or says
/// clearly why not; never a panic, never a node lost.
#[test]
fn corpus_imports_or_explains() {
    let corpus = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/corosync"
    ));
    let Ok(entries) = std::fs::read_dir(corpus) else {
        println!("SKIPPED: corpus not found at {}", corpus.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some("MANIFEST.txt"))
        .collect();
    files.sort();
    let mut imported = 0;
    for f in files {
        let Ok(src) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(doc) = Document::parse(&src) else {
            continue;
        };
        let view = doc.view();
        if view.nodes.is_empty() || view.nodes.iter().any(|n| n.name.is_none()) {
            continue;
        }
        let names: Vec<String> = view.nodes.iter().filter_map(|n| n.name.clone()).collect();
        let s = Tmp::new("cli-import-corpus");
        s.write("corosync.conf", &src);
        let o = import(&s.0, &[]);
        let out = stdout(&o);
        let err = stderr(&o);
        let label = f.display();
        match o.status.code() {
            Some(0) => {
                valid_cluster(&out);
                imported += 1;
            }
            // Written, but invalid: the reasons are on stderr.
            Some(1) => {
                assert!(err.contains("error["), "{label}: no reason given:\n{err}");
                assert!(
                    err.contains("the imported manifest does not validate"),
                    "{label}:\n{err}"
                );
            }
            Some(2) => {
                assert!(
                    err.contains("error: cannot import:"),
                    "{label}: no reason given:\n{err}"
                );
                assert!(out.is_empty(), "{label}");
                continue;
            }
            other => panic!("{label}: exit {other:?}\n{err}"),
        }
        let reports = validate_documents("x.yaml", &out);
        if let Some(c) = reports.first().and_then(|r| r.cluster.as_ref()) {
            let got: Vec<&str> = c.spec.nodes.iter().map(|n| n.name.as_str()).collect();
            for n in &names {
                assert!(got.contains(&n.as_str()), "{label}: node {n} lost\n{out}");
            }
            assert_eq!(got.len(), names.len(), "{label}\n{out}");
        } else {
            panic!("{label}: output is not a readable manifest\n{out}");
        }
    }
    assert!(
        imported >= 3,
        "only {imported} corpus files imported cleanly"
    );
}
