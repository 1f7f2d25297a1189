//! The exact argument vectors the `pve` target runs, for every step kind on both PVE
//! generations (corosync 3 `--linkN ADDR[,priority=N]`, corosync 2 `--ringN_addr` /
//! `--bindnetN_addr`). No real Proxmox VE runs here: these are golden assertions on the
//! vectors pvecm, qm and pct document (reference/domain.md §4.4, §7.1).

use pve_gitops::plan::step::{CreateCluster, JoinNode, MigrateGuest};
use pve_gitops::target::pve::argv::{self, JoinAuth};
use pve_gitops::target::pve::Generation;
use pve_gitops_schema::spec::GuestType;
use std::collections::BTreeMap;

fn v(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

const CONF3: &str = "totem {
  cluster_name: prod
  config_version: 1
  interface {
    knet_link_priority: 15
    linknumber: 0
  }
  interface {
    knet_link_priority: 20
    linknumber: 1
  }
  ip_version: ipv4-6
  link_mode: passive
  secauth: on
  version: 2
}

nodelist {
  node {
    name: pve1
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 10.0.0.1
    ring1_addr: 10.1.0.1
  }
}

quorum {
  provider: corosync_votequorum
}
";

const CONF2: &str = "totem {
  cluster_name: old
  config_version: 1
  interface {
    bindnetaddr: 10.0.0.0
    ringnumber: 0
  }
  interface {
    bindnetaddr: 10.1.0.0
    ringnumber: 1
  }
  rrp_mode: passive
  version: 2
}

nodelist {
  node {
    name: pve1
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 10.0.0.1
    ring1_addr: 10.1.0.1
  }
}

quorum {
  provider: corosync_votequorum
}
";

fn links() -> BTreeMap<u8, String> {
    [(0, "10.0.0.1".to_string()), (1, "10.1.0.1".to_string())].into()
}

fn create(conf: &str) -> CreateCluster {
    CreateCluster {
        cluster_name: "prod".into(),
        founder: "pve1".into(),
        nodeid: 1,
        quorum_votes: 1,
        links: links(),
        corosync_conf: conf.into(),
    }
}

fn join(conf: &str) -> JoinNode {
    JoinNode {
        node: "pve4".into(),
        nodeid: 4,
        quorum_votes: 2,
        links: [(0, "10.0.0.4".to_string()), (1, "10.1.0.4".to_string())].into(),
        via: "pve1".into(),
        from_version: 5,
        to_version: 6,
        corosync_conf: conf.into(),
    }
}

#[test]
fn create_corosync3_with_link_priorities() {
    assert_eq!(
        argv::create(Generation::Corosync3, &create(CONF3)),
        v("pvecm create prod --link0 10.0.0.1,priority=15 --link1 10.1.0.1,priority=20 --nodeid 1 --votes 1")
    );
}

#[test]
fn create_corosync3_without_priorities_or_with_zero() {
    let conf = CONF3
        .replace("knet_link_priority: 15", "knet_link_priority: 0")
        .replace("    knet_link_priority: 20\n", "");
    assert_eq!(
        argv::create(Generation::Corosync3, &create(&conf)),
        v("pvecm create prod --link0 10.0.0.1 --link1 10.1.0.1 --nodeid 1 --votes 1")
    );
}

#[test]
fn create_corosync2_rings_and_bindnets() {
    assert_eq!(
        argv::create(Generation::Corosync2, &create(CONF2)),
        v("pvecm create prod --ring0_addr 10.0.0.1 --bindnet0_addr 10.0.0.0 --ring1_addr 10.1.0.1 --bindnet1_addr 10.1.0.0 --nodeid 1 --votes 1")
    );
    // No bindnetaddr in the conf: the ring address itself (PVE 5 wrote that).
    let conf = CONF2.replace("    bindnetaddr: 10.1.0.0\n", "");
    assert_eq!(
        argv::create(Generation::Corosync2, &create(&conf)),
        v("pvecm create prod --ring0_addr 10.0.0.1 --bindnet0_addr 10.0.0.0 --ring1_addr 10.1.0.1 --bindnet1_addr 10.1.0.1 --nodeid 1 --votes 1")
    );
}

#[test]
fn join_corosync3_api_and_ssh() {
    let fp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    let api = JoinAuth::Api {
        fingerprint: fp.into(),
    };
    // Priorities are never passed on add (pvecm ignores them there).
    assert_eq!(
        argv::join(Generation::Corosync3, &join(CONF3), "10.0.0.1", &api),
        v(&format!(
            "pvecm add 10.0.0.1 --link0 10.0.0.4 --link1 10.1.0.4 --nodeid 4 --votes 2 --fingerprint {fp}"
        ))
    );
    assert_eq!(
        argv::join(Generation::Corosync3, &join(CONF3), "pve1", &JoinAuth::Ssh),
        v("pvecm add pve1 --link0 10.0.0.4 --link1 10.1.0.4 --nodeid 4 --votes 2 --use_ssh 1")
    );
}

#[test]
fn join_corosync2_rings() {
    assert_eq!(
        argv::join(Generation::Corosync2, &join(CONF2), "10.0.0.1", &JoinAuth::Ssh),
        v("pvecm add 10.0.0.1 --ring0_addr 10.0.0.4 --ring1_addr 10.1.0.4 --nodeid 4 --votes 2 --use_ssh 1")
    );
}

#[test]
fn delnode_expected_and_tools() {
    assert_eq!(argv::delnode("pve3"), v("pvecm delnode pve3"));
    assert_eq!(argv::expected(2), v("pvecm expected 2"));
    assert_eq!(argv::quorum_status(), v("corosync-quorumtool -s -p"));
    assert_eq!(argv::quorum_list(), v("corosync-quorumtool -l"));
    assert_eq!(
        argv::cmap_get("totem.config_version"),
        v("corosync-cmapctl -g totem.config_version")
    );
    assert_eq!(
        argv::cmap_prefix(argv::runtime_members_prefix(Generation::Corosync3)),
        v("corosync-cmapctl runtime.members")
    );
    assert_eq!(
        argv::cmap_prefix(argv::runtime_members_prefix(Generation::Corosync2)),
        v("corosync-cmapctl runtime.totem.pg.mrp.srp.members")
    );
    assert_eq!(
        argv::ip_addr_show(&"10.0.0.4".parse().unwrap()),
        v("ip -o addr show to 10.0.0.4/32 up")
    );
    assert_eq!(
        argv::ip_addr_show(&"fd00::4".parse().unwrap()),
        v("ip -o addr show to fd00::4/128 up")
    );
    assert_eq!(
        argv::restart_corosync_remote("pve2", "192.168.1.12"),
        v("ssh -o BatchMode=yes -o HostKeyAlias=pve2 root@192.168.1.12 systemctl restart corosync")
    );
    assert_eq!(
        argv::task_status("pve1", "UPID:pve1:1:2:3:qmigrate:100:root@pam:"),
        v("pvesh get /nodes/pve1/tasks/UPID:pve1:1:2:3:qmigrate:100:root@pam:/status --output-format json")
    );
}

fn mig(gtype: GuestType, online: bool, restart: bool) -> MigrateGuest {
    MigrateGuest {
        vmid: 100,
        guest_type: gtype,
        from: "pve1".into(),
        to: "pve2".into(),
        online,
        restart,
        migration_network: Some("10.1.2.0/24".into()),
        migration_type: Some("insecure".into()),
    }
}

#[test]
fn migrations_both_guest_types() {
    assert_eq!(
        argv::migrate(&mig(GuestType::Qemu, true, false), false),
        v("qm migrate 100 pve2 --online --migration_network 10.1.2.0/24 --migration_type insecure")
    );
    assert_eq!(
        argv::migrate(&mig(GuestType::Qemu, false, false), true),
        v("qm migrate 100 pve2 --migration_network 10.1.2.0/24 --migration_type insecure --with-local-disks")
    );
    // pct has no network/type/local-disks options (datacenter.cfg decides).
    assert_eq!(
        argv::migrate(&mig(GuestType::Lxc, false, true), true),
        v("pct migrate 100 pve2 --restart")
    );
}

#[test]
fn no_vector_is_a_shell_string() {
    let all = [
        argv::create(Generation::Corosync3, &create(CONF3)),
        argv::join(
            Generation::Corosync3,
            &join(CONF3),
            "10.0.0.1",
            &JoinAuth::Ssh,
        ),
        argv::migrate(&mig(GuestType::Qemu, true, false), true),
    ];
    for a in all {
        assert!(!a[0].contains(' '), "{a:?}");
        assert!(
            a.iter().all(|w| !w.contains(';') && !w.contains('|')),
            "{a:?}"
        );
    }
}
