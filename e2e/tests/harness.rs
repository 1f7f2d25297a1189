//! Smoke tests of the harness itself, against real `corosync -f` processes.
//!
//! Each test owns a distinct prefix (`pgea`..`pgee`), hence distinct namespaces, base
//! dirs and (per harness index) address blocks, so the tests run in parallel threads.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pve_gitops_e2e::{
    base_dir, cleanup_stale, preflight, wait_for, wait_until, Harness, Result, TestConf,
    QUORUM_TIMEOUT,
};

/// Build `n` nodes, write config_version 1 (link 0 only) and start all; wait until every
/// node is quorate with all members.
fn cluster(prefix: &str, n: usize, links: usize) -> Result<Harness> {
    cluster_with(prefix, n, links, |_| {})
}

/// [`cluster`] with a tweak applied to the config (version 1, link 0) before start.
fn cluster_with(
    prefix: &str,
    n: usize,
    links: usize,
    tweak: impl Fn(&mut TestConf),
) -> Result<Harness> {
    let t = Instant::now();
    let mut h = Harness::new(prefix, n, links)?;
    let ids = h.node_ids();
    let mut conf = h.test_conf(&ids, 1, 1);
    tweak(&mut conf);
    h.write_conf_all(&conf.render())?;
    for &i in &ids {
        h.start(i)?;
    }
    let members: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    for &i in &ids {
        h.wait_quorate(i, &members, QUORUM_TIMEOUT)?;
    }
    eprintln!(
        "{prefix}: {n} nodes quorate after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    Ok(h)
}

/// Assert every node in `nodes` is quorate over `members` with `expected` votes and
/// runs `version`.
fn assert_cluster(
    h: &mut Harness,
    nodes: &[usize],
    members: &[u32],
    expected: u32,
    version: u64,
) -> Result<()> {
    for &i in nodes {
        let st = h.wait_status(i, QUORUM_TIMEOUT, "full membership", |s| {
            s.quorate && s.member_ids() == members && s.expected_votes == expected
        })?;
        assert_eq!(st.local_nodeid, i as u32, "node {i}");
        assert_eq!(st.total_votes, members.len() as u32, "node {i}: {st:?}");
        assert_eq!(st.quorum, expected / 2 + 1, "node {i}: {st:?}");
        assert_eq!(h.config_version(i)?, version, "node {i} config_version");
    }
    Ok(())
}

#[test]
fn a_three_nodes_come_up_quorate() -> Result<()> {
    if !preflight("a_three_nodes_come_up_quorate") {
        return Ok(());
    }
    let mut h = cluster("pgea", 3, 1)?;
    assert_cluster(&mut h, &[1, 2, 3], &[1, 2, 3], 3, 1)?;
    for i in 1..=3 {
        // Per-node private mount + UTS namespace.
        let conf = h
            .run_on_node(i, "cat", ["/etc/corosync/corosync.conf"], &[])?
            .expect_success()?;
        assert_eq!(conf.stdout, h.read_conf(i)?);
        let host = h
            .run_on_node(i, "hostname", [] as [&str; 0], &[])?
            .expect_success()?;
        assert_eq!(host.stdout.trim(), format!("pve{i}"));
        let pid = h
            .run_on_node(i, "cat", ["/run/corosync.pid"], &[])?
            .expect_success()?;
        assert_eq!(pid.stdout.trim().parse::<u32>().ok(), h.corosync_pid(i)?);
        let env = h.run_on_node(i, "sh", ["-c", "echo $E2E_PROBE"], &[("E2E_PROBE", "x1")])?;
        assert_eq!(env.stdout.trim(), "x1");

        let name = h
            .cmap_get(i, "totem.cluster_name")?
            .expect("cluster_name in cmap");
        assert_eq!((name.ty.as_str(), name.value.as_str()), ("str", "e2e"));
        assert_eq!(h.cmap_get(i, "totem.no_such_key")?, None);

        let ls = h.link_status(i)?;
        assert_eq!((ls.local_nodeid, ls.transport.as_str()), (i as u32, "knet"));
        let l0 = ls.link(0).expect("link 0");
        assert_eq!(l0.addr, h.node_addr(i, 0).to_string());
        assert_eq!(l0.status_of(i as u32), Some("localhost"));
        for j in (1..=3).filter(|&j| j != i) {
            assert_eq!(
                l0.status_of(j as u32),
                Some("connected"),
                "node {i} -> {j}: {ls:?}"
            );
        }
        let ns = h.node_status(i)?;
        let others: BTreeSet<u32> = ns.iter().map(|n| n.nodeid).collect();
        let want: BTreeSet<u32> = (1..=3).filter(|&j| j != i as u32).collect();
        assert_eq!(others, want, "{ns:?}");
        assert!(
            ns.iter()
                .all(|n| n.reachable && n.link(0).is_some_and(|l| l.connected)),
            "{ns:?}"
        );
    }
    // Nothing leaks into the host network namespace.
    let host_links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    let host_links = String::from_utf8_lossy(&host_links.stdout);
    assert!(
        !host_links.contains("pgea"),
        "host netns sees harness links:\n{host_links}"
    );
    Ok(())
}

#[test]
fn b_add_fourth_node_by_reload() -> Result<()> {
    if !preflight("b_add_fourth_node_by_reload") {
        return Ok(());
    }
    let mut h = cluster("pgeb", 3, 1)?;
    let four = h.add_node()?;
    assert_eq!(four, 4);
    h.write_conf_all(&h.render_conf(&[1, 2, 3, 4], 1, 2))?;
    h.reload(1)?;
    // Reloaded everywhere before node 4 runs: expected 4, 3 present, quorum 3.
    for i in 1..=3 {
        let st = h.wait_status(i, QUORUM_TIMEOUT, "expected 4 after reload", |s| {
            s.expected_votes == 4
        })?;
        assert!(st.quorate, "{st:?}");
        assert_eq!(
            (st.total_votes, st.quorum, st.members.len()),
            (3, 3, 3),
            "{st:?}"
        );
        assert_eq!(h.config_version(i)?, 2);
    }
    let t = Instant::now();
    h.start(4)?;
    h.wait_quorate(4, &[1, 2, 3, 4], QUORUM_TIMEOUT)?;
    eprintln!(
        "pgeb: node 4 joined after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_cluster(&mut h, &[1, 2, 3, 4], &[1, 2, 3, 4], 4, 2)?;
    let nodelist = h.cmap_prefix(1, "nodelist.node.")?;
    assert!(
        nodelist
            .iter()
            .any(|e| e.key.ends_with(".ring0_addr") && e.value == h.node_addr(4, 0).to_string()),
        "{nodelist:?}"
    );
    Ok(())
}

#[test]
fn c_stop_one_node_and_expected_votes() -> Result<()> {
    if !preflight("c_stop_one_node_and_expected_votes") {
        return Ok(());
    }
    let mut h = cluster("pgec", 3, 1)?;
    // 3 of 3 votes present: -e may neither go below 3 nor make the cluster inquorate.
    let refused = h
        .set_expected(1, 2)
        .expect_err("-e 2 with 3 votes present must be refused");
    assert!(
        refused.to_string().contains("CS_ERR_INVALID_PARAM"),
        "{refused}"
    );
    h.set_expected(1, 4)?;
    h.wait_status(2, QUORUM_TIMEOUT, "expected 4 via -e", |s| {
        s.expected_votes == 4 && s.quorum == 3
    })?;
    // A reload recomputes expected votes from the nodelist.
    h.reload(1)?;
    h.wait_status(2, QUORUM_TIMEOUT, "expected 3 after reload", |s| {
        s.expected_votes == 3 && s.quorum == 2
    })?;

    let t = Instant::now();
    let status = h.stop(3)?;
    eprintln!(
        "pgec: node 3 stopped ({status}) in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert!(!h.is_running(3)?);
    for i in [1, 2] {
        let st = h.wait_quorate(i, &[1, 2], QUORUM_TIMEOUT)?;
        assert_eq!(
            (st.expected_votes, st.total_votes, st.quorum),
            (3, 2, 2),
            "{st:?}"
        );
    }
    // 2 votes present: accepted range is 2..=3.
    for bad in [1, 4, 5] {
        assert!(
            h.set_expected(1, bad).is_err(),
            "-e {bad} with 2 votes present must be refused"
        );
    }
    h.set_expected(1, 2)?;
    let st = h.wait_status(2, QUORUM_TIMEOUT, "expected 2 via -e", |s| {
        s.expected_votes == 2
    })?;
    assert!(st.quorate && st.quorum == 2, "{st:?}");
    Ok(())
}

#[test]
fn d_second_link_survives_cable_pull() -> Result<()> {
    if !preflight("d_second_link_survives_cable_pull") {
        return Ok(());
    }
    // The cable pull must be handled by knet failover, not by totem. libknet declares a
    // link down after `knet_ping_timeout * backoff + 2 * latency`, where backoff starts at
    // 10 whenever a link comes up and drops by 1 per second. With the defaults a young
    // link takes ~2-3 s, longer than the 1650 ms runtime token of `token: 1000`, and
    // corosync re-forms the ring (same members, still quorate, new ring id). So: token
    // 3000 (3650 ms at runtime, the corosync/PVE default) and a 200 ms ping timeout
    // (worst case ~2 s).
    let default_token = |c: &mut TestConf| {
        c.token_ms = 3000;
        c.knet_ping_ms = Some((50, 200));
    };
    let h = cluster_with("pged", 3, 2, default_token)?;
    assert_eq!(h.link_status(1)?.links.len(), 1);
    let mut conf = h.test_conf(&[1, 2, 3], 2, 2);
    default_token(&mut conf);
    h.write_conf_all(&conf.render())?;
    h.reload(1)?;
    let t = Instant::now();
    for i in 1..=3 {
        wait_for(
            QUORUM_TIMEOUT,
            &format!("link 1 connected on node {i}"),
            || {
                let ns = h.node_status(i).ok()?;
                (ns.len() == 2 && ns.iter().all(|n| n.link(1).is_some_and(|l| l.connected)))
                    .then_some(())
            },
        )?;
        assert_eq!(h.config_version(i)?, 2);
        let l1 = h.link_status(i)?;
        assert_eq!(
            l1.link(1).expect("link 1").addr,
            h.node_addr(i, 1).to_string()
        );
    }
    eprintln!("pged: link 1 up after {:.2} s", t.elapsed().as_secs_f64());
    let ring = h.quorum_status(1)?.ring_id;

    h.link_down(2, 0)?;
    let t = Instant::now();
    wait_for(QUORUM_TIMEOUT, "node 1 sees node 2's link 0 down", || {
        let ns = h.node_status(1).ok()?;
        let n2 = ns.iter().find(|n| n.nodeid == 2)?;
        (n2.reachable && !n2.link(0)?.connected && n2.link(1)?.connected).then_some(())
    })?;
    eprintln!(
        "pged: link 0 of node 2 detected down after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // Hold for longer than the token timeout: no membership change at all.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(6) {
        for i in 1..=3 {
            let st = h.quorum_status(i)?;
            assert!(
                st.quorate && st.member_ids() == [1, 2, 3],
                "node {i} during cable pull: {st:?}"
            );
            assert_eq!(
                st.ring_id, ring,
                "node {i}: membership changed during cable pull"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    h.link_up(2, 0)?;
    wait_until(QUORUM_TIMEOUT, || {
        h.node_status(1)
            .ok()
            .and_then(|ns| ns.into_iter().find(|n| n.nodeid == 2))
            .and_then(|n| n.link(0).map(|l| l.connected))
            == Some(true)
    })?;
    Ok(())
}

#[test]
fn e_cleanup_stale_after_crash() -> Result<()> {
    if !preflight("e_cleanup_stale_after_crash") {
        return Ok(());
    }
    let mut h = Harness::new("pgee", 2, 1)?;
    h.write_conf_all(&h.render_conf(&[1, 2], 1, 1))?;
    let pid = h.start(1)?;
    wait_until(QUORUM_TIMEOUT, || {
        h.cmap_get(1, "totem.config_version").is_ok()
    })?;
    // Simulate a crashed test process: nothing runs Drop.
    std::mem::forget(h);
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    cleanup_stale("pgee")?;
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let ns = String::from_utf8_lossy(&ns.stdout);
    assert!(
        !ns.lines().any(|l| l.starts_with("pgee-")),
        "namespaces left:\n{ns}"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "corosync {pid} still alive: {stat}"
    );
    assert!(!base_dir("pgee").exists());
    let shm: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("qb-corosync-{pid}-")))
        .collect();
    assert!(shm.is_empty(), "shm left: {shm:?}");
    Ok(())
}

#[test]
fn f_run_pve_gitops_binary_on_a_node() -> Result<()> {
    if !preflight("f_run_pve_gitops_binary_on_a_node") {
        return Ok(());
    }
    let Some(bin) = pve_gitops_e2e::pve_gitops_bin() else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED f_run_pve_gitops_binary_on_a_node: pve-gitops not built \
             (cargo build -p pve-gitops, or set PVE_GITOPS_BIN)"
        );
        return Ok(());
    };
    let h = Harness::new("pgef", 1, 1)?;
    // Only the exit status: the controller's CLI is still evolving.
    h.run_on_node(1, &bin, ["--help"], &[("RUST_BACKTRACE", "0")])?
        .expect_success()?;
    // The node's view: its own hostname and an empty private /etc/corosync but the authkey.
    let ls = h
        .run_on_node(1, "ls", ["/etc/corosync"], &[])?
        .expect_success()?;
    assert_eq!(ls.stdout.trim(), "authkey");
    Ok(())
}
