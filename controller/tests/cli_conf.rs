//! `pve-gitops conf check`: exit codes, located errors, `--print`, `--json`, `--pve`, kinds.

mod common;

use common::{bin, stderr, stdout, Tmp};
use std::path::Path;
use std::process::Output;

fn run(args: &[&str], files: &[&Path]) -> Output {
    bin()
        .arg("conf")
        .arg("check")
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

const GOOD: &str = "\
totem {
  cluster_name: prod
  config_version: 3
  secauth: on
  interface {
    linknumber: 0
  }
}

nodelist {
  node {
    name: pve1
    nodeid: 1
    ring0_addr: 10.0.0.1
  }
  node {
    name: pve2
    nodeid: 2
    ring0_addr: 10.0.0.2
  }
}

quorum {
  provider: corosync_votequorum
}
";

#[test]
fn good_file_exits_zero() {
    let s = Tmp::new("cli-conf-good");
    let f = s.write("corosync.conf", GOOD);
    let o = run(&[], &[&f]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("1 file(s) checked: 0 error(s), 0 warning(s)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn every_syntax_error_is_reported_with_line_and_column() {
    let s = Tmp::new("cli-conf-bad");
    let text = "totem {\n  cluster_name: prod\n  config_version: 3\n  secauth: on\n  bad line\n}\nnodelist {\n  node {\n    name: a\n    nodeid: 1\n    ring0_addr: 10.0.0.1 { x\n  }\n}\n}\n}\n";
    let f = s.write("corosync.conf.new", text);
    let o = run(&[], &[&f]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let name = f.display().to_string();
    assert!(
        out.contains(&format!("--> {name}:5:3")),
        "first error at 5:3:\n{out}"
    );
    assert!(
        out.contains("Line is not opening or closing section or key value"),
        "{out}"
    );
    assert!(
        out.contains("5 |   bad line\n  |   ^^^^^^^^"),
        "snippet and caret:\n{out}"
    );
    assert!(
        out.contains(&format!("--> {name}:11:28")),
        "second error at 11:28:\n{out}"
    );
    assert!(
        out.contains("Extra characters after opening bracket '{'"),
        "{out}"
    );
    assert!(
        out.contains(&format!("--> {name}:15:1")),
        "third error at 15:1:\n{out}"
    );
    assert!(out.contains("Unexpected closing brace"), "{out}");
    assert!(out.contains("3 error(s)"), "{out}");
}

#[test]
fn verify_warnings_do_not_fail() {
    let s = Tmp::new("cli-conf-warn");
    let f = s.write("corosync.conf", GOOD.replace("  secauth: on\n", ""));
    let o = run(&[], &[&f]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            "warning[corosync-verify]: authentication/encryption is not explicitly enabled"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}:1:1", f.display())),
        "located at totem:\n{out}"
    );
    assert!(out.contains("0 error(s), 1 warning(s)"), "{out}");
}

#[test]
fn unreadable_file_exits_two() {
    let s = Tmp::new("cli-conf-missing");
    let f = s.0.join("corosync.conf");
    let o = run(&[], &[&f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));

    let f = s.write("corosync.conf", b"totem {\n  cluster_name: \xff\n}\n");
    let o = run(&[], &[&f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":2: the file is not valid UTF-8"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_name_needs_kind() {
    let s = Tmp::new("cli-conf-kind");
    let f = s.write("cluster.txt", GOOD);
    let o = run(&[], &[&f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("pass --kind corosync or --kind datacenter"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    let o = run(&["--kind", "corosync"], &[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn print_is_byte_identical_including_crlf() {
    let s = Tmp::new("cli-conf-print");
    let crlf = "# comment\r\ntotem {\r\n\tcluster_name: x # kept\r\n  config_version: 1\r\n\r\n}\r\nquorum {\r\n}";
    for (name, text) in [
        ("corosync.conf", GOOD.to_string()),
        ("corosync.conf.new", crlf.to_string()),
        (
            "datacenter.cfg",
            "# c\r\nkeyboard: de\r\nmigration:  secure,network=10.0.0.0/8   ".to_string(),
        ),
    ] {
        let f = s.write(name, &text);
        let o = run(&["--print"], &[&f]);
        assert_eq!(o.stdout, text.as_bytes(), "{name} printed back exactly");
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
    // Errors go to stderr, the document still to stdout.
    let bad = "totem {\n  oops\n}\n";
    let f = s.write("corosync.conf", bad);
    let o = run(&["--print"], &[&f]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), bad);
    assert!(stderr(&o).contains(":2:3"), "{}", stderr(&o));
}

#[test]
fn print_refuses_several_files() {
    let s = Tmp::new("cli-conf-print2");
    let a = s.write("corosync.conf", GOOD);
    let b = s.write("corosync.conf.new", GOOD);
    let o = run(&["--print"], &[&a, &b]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).contains("--print takes exactly one file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn json_prints_the_typed_view() {
    let s = Tmp::new("cli-conf-json");
    let f = s.write("corosync.conf", GOOD);
    let o = run(&["--json"], &[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "corosync");
    assert_eq!(v["valid"], true);
    assert_eq!(v["view"]["totem"]["cluster_name"], "prod");
    assert_eq!(v["view"]["totem"]["config_version"], 3);
    assert_eq!(v["view"]["effective_transport"], "knet");
    assert_eq!(v["view"]["nodes"][1]["name"], "pve2");
    assert_eq!(v["view"]["nodes"][1]["nodeid"], 2);
    assert_eq!(v["view"]["nodes"][1]["rings"]["0"], "10.0.0.2");
    assert_eq!(v["view"]["quorum"]["provider"], "corosync_votequorum");
    assert_eq!(v["diagnostics"].as_array().map(Vec::len), Some(0));

    // Several files: an array, one object per file, errors included.
    let bad = s.write("corosync.conf.new", "totem {\n");
    let dc = s.write(
        "datacenter.cfg",
        "migration: insecure,network=10.1.2.0/24\nbwlimit: migration=100\n",
    );
    let o = run(&["--json"], &[&f, &bad, &dc]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[1]["valid"], false);
    assert_eq!(arr[1]["diagnostics"][0]["message"], "Missing closing brace");
    assert_eq!(arr[1]["diagnostics"][0]["location"]["line"], 1);
    assert_eq!(arr[2]["kind"], "datacenter");
    assert_eq!(arr[2]["view"]["migration"]["type"], "insecure");
    assert_eq!(arr[2]["view"]["migration"]["network"], "10.1.2.0/24");
    assert_eq!(arr[2]["view"]["bwlimit"]["migration"], 100);
}

#[test]
fn pve_refuses_values_proxmox_cannot_read() {
    let s = Tmp::new("cli-conf-pve");
    let f = s.write(
        "corosync.conf",
        GOOD.replace("cluster_name: prod", "cluster_name: a b"),
    );
    let o = run(&[], &[&f]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "corosync itself accepts it: {}",
        stdout(&o)
    );
    let o = run(&["--pve"], &[&f]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("error[pve-unreadable]: value of 'cluster_name' contains whitespace"),
        "{out}"
    );
    assert!(out.contains(&format!("--> {}:2:17", f.display())), "{out}");
    assert!(
        out.contains("2 |   cluster_name: a b\n  |                 ^^^"),
        "{out}"
    );
}

#[test]
fn datacenter_kind() {
    let s = Tmp::new("cli-conf-dc");
    let good = s.write(
        "datacenter.cfg",
        "keyboard: de\nmigration: secure,network=10.1.2.0/24\nmax_workers: 4\n",
    );
    let o = run(&[], &[&good]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("0 error(s), 0 warning(s)"),
        "{}",
        stdout(&o)
    );

    // PVE drops `migration` without a type: a warning, an error with --pve.
    let text = "keyboard: de\nmigration: network=10.1.2.0/24\n";
    let f = s.write("datacenter.cfg.new", text);
    let o = run(&[], &[&f]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("warning[datacenter-invalid-value]"), "{out}");
    assert!(out.contains(&format!("{}:2:12", f.display())), "{out}");
    let o = run(&["--pve"], &[&f]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("error[datacenter-invalid-value]"),
        "{}",
        stdout(&o)
    );

    // --kind overrides the name.
    let other = s.write("corosync.conf.dc", "max_workers: 2\n");
    let o = run(&["--kind", "datacenter", "--json"], &[&other]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "datacenter");
    assert_eq!(v["view"]["max_workers"], 2);
}
