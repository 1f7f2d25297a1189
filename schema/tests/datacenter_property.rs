//! datacenter.cfg property strings: `migration`, `bwlimit`, `max_workers`.

use proptest::prelude::*;
use pve_gitops_schema::datacenter::{
    Bwlimit, DatacenterDocument, Migration, MigrationType, PropertyError,
};

fn mig(s: &str) -> Result<Migration, String> {
    s.parse::<Migration>().map_err(|e| e.to_string())
}

#[test]
fn all_migration_spellings_compare_equal() {
    let want = Migration::new(MigrationType::Secure, Some("10.1.2.0/24".parse().unwrap()));
    for s in [
        "secure,network=10.1.2.0/24",
        "type=secure,network=10.1.2.0/24",
        "network=10.1.2.0/24,type=secure",
        "network=10.1.2.0/24,secure",
        ",secure,,network=10.1.2.0/24,",
        "secure,network=10.1.2.0/024",
    ] {
        assert_eq!(mig(s), Ok(want), "{s}");
    }
    assert_eq!(want.to_string(), "secure,network=10.1.2.0/24");
}

#[test]
fn migration_type_only_and_insecure() {
    assert_eq!(
        mig("secure"),
        Ok(Migration::new(MigrationType::Secure, None))
    );
    let m = mig("type=insecure,network=192.168.50.0/24").unwrap();
    assert_eq!(m.mtype, MigrationType::Insecure);
    assert_eq!(m.to_string(), "insecure,network=192.168.50.0/24");
    assert_eq!(mig("insecure").unwrap().to_string(), "insecure");
}

#[test]
fn migration_keeps_host_bits() {
    let m = mig("secure,network=10.100.3.101/24").unwrap();
    assert_eq!(m.to_string(), "secure,network=10.100.3.101/24");
    let plain = mig("secure,network=10.100.3.0/24").unwrap();
    assert_ne!(m, plain);
    assert!(m.is_equivalent(&plain));
}

#[test]
fn migration_ipv6() {
    let m = mig("secure,network=fd00:1::/64").unwrap();
    assert_eq!(m.to_string(), "secure,network=fd00:1::/64");
    assert!(mig("secure,network=fd00::/8").is_ok());
    assert!(mig("secure,network=::/128").is_ok());
    assert!(mig("secure,network=fd00::/7").is_err());
    assert!(mig("secure,network=fd00::/129").is_err());
}

#[test]
fn migration_errors_use_pve_wording() {
    let cases = [
        (
            "network=10.1.2.0/24",
            "type: property is missing and it is not optional",
        ),
        ("", "type: property is missing and it is not optional"),
        (
            "secure,type=insecure",
            "duplicate key in comma-separated list property: type",
        ),
        (
            "type=secure,insecure",
            "duplicate key in comma-separated list property: type",
        ),
        (
            "secure,insecure",
            "duplicate key in comma-separated list property: type",
        ),
        (
            "secure,network=10.0.0.0/8,network=10.0.0.0/8",
            "duplicate key in comma-separated list property: network",
        ),
        (
            "secure,net=10.0.0.0/8",
            "invalid key in comma-separated list property: net",
        ),
        (
            "secure, network=10.0.0.0/8",
            "invalid key in comma-separated list property:  network",
        ),
        ("type=", "missing key in comma-separated list property"),
        ("=secure", "missing key in comma-separated list property"),
        (
            "fast",
            "type: value 'fast' does not have a value in the enumeration 'secure, insecure'",
        ),
        (
            "Secure",
            "type: value 'Secure' does not have a value in the enumeration 'secure, insecure'",
        ),
    ];
    for (input, msg) in cases {
        assert_eq!(mig(input), Err(msg.to_string()), "{input:?}");
    }
}

#[test]
fn migration_cidr_rules() {
    let bad = "network: value does not look like a valid CIDR network";
    for n in [
        "10.1.2.0/7",
        "10.1.2.0/33",
        "10.1.2.0",
        "10.1.2.0/",
        "10.1.2/24",
        "010.1.2.0/24",
        "10.1.2.0/24x",
        "10.1.2.0/-24",
        "host/24",
        "fe80::1%eth0/64",
        "10.1.2.0/99999999999999999999",
    ] {
        assert_eq!(mig(&format!("secure,network={n}")), Err(bad.into()), "{n}");
    }
    for n in ["10.0.0.0/8", "10.1.2.3/32", "0.0.0.0/8"] {
        assert!(mig(&format!("secure,network={n}")).is_ok(), "{n}");
    }
}

#[test]
fn bwlimit_parse_and_print() {
    let b: Bwlimit = "migration=512000,default=100".parse().unwrap();
    assert_eq!(
        b,
        Bwlimit {
            default: Some(100),
            migration: Some(512000),
            ..Bwlimit::default()
        }
    );
    assert_eq!(b.to_string(), "default=100,migration=512000");
    let all: Bwlimit = "restore=5,move=4,migration=3,default=2,clone=1"
        .parse()
        .unwrap();
    assert_eq!(
        all.to_string(),
        "clone=1,default=2,migration=3,move=4,restore=5"
    );
    assert_eq!(all.move_, Some(4));
    assert_eq!(all.with_migration(None).migration, None);
    assert_eq!(all.with_migration(None).restore, Some(5));
    let empty: Bwlimit = "".parse().unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_string(), "");
    assert_eq!(
        "migration=1e3".parse::<Bwlimit>().unwrap().migration,
        Some(1000)
    );
}

#[test]
fn bwlimit_errors() {
    let e = |s: &str| s.parse::<Bwlimit>().unwrap_err().to_string();
    assert_eq!(
        e("512000"),
        "value without key, but schema does not define a default key"
    );
    assert_eq!(
        e("speed=1"),
        "invalid key in comma-separated list property: speed"
    );
    assert_eq!(
        e("migration=1,migration=2"),
        "duplicate key in comma-separated list property: migration"
    );
    assert_eq!(
        e("migration=fast"),
        "migration: type check ('number') failed - got 'fast'"
    );
    assert_eq!(
        e("migration=-1"),
        "migration: value must have a minimum value of 0"
    );
    assert!(e("migration=1.5").starts_with("migration: "));
    assert!(e("migration=99999999999999999999999").starts_with("migration: "));
}

#[test]
fn max_workers_rules() {
    let get = |v: &str| DatacenterDocument::parse(&format!("max_workers: {v}\n")).max_workers();
    assert_eq!(get("4"), Some(Ok(4)));
    assert_eq!(get("1"), Some(Ok(1)));
    assert_eq!(
        get("0"),
        Some(Err(PropertyError::invalid_value(
            "max_workers",
            "value must have a minimum value of 1"
        )))
    );
    assert!(matches!(get("-3"), Some(Err(_))));
    assert_eq!(
        get("four").map(|r| r.map_err(|e| e.to_string())),
        Some(Err(
            "max_workers: type check ('integer') failed - got 'four'".into()
        ))
    );
    assert!(matches!(get("99999999999"), Some(Err(_))));
    assert_eq!(DatacenterDocument::parse("").max_workers(), None);
}

#[test]
fn serde_names() {
    let m = Migration::new(
        MigrationType::Insecure,
        Some("10.1.2.0/24".parse().unwrap()),
    );
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"type":"insecure","network":"10.1.2.0/24"}"#
    );
    let b = Bwlimit {
        move_: Some(7),
        ..Bwlimit::default()
    };
    assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"move":7}"#);
}

fn cidr_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), 8u8..=32)
            .prop_map(|(a, p)| format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3])),
        (any::<u128>(), 8u8..=128)
            .prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv6Addr::from(a))),
    ]
}

proptest! {
    #[test]
    fn migration_print_parse_round_trip(
        insecure in any::<bool>(),
        net in prop::option::of(cidr_strategy()),
        explicit in any::<bool>(),
        net_first in any::<bool>(),
    ) {
        let t = if insecure { "insecure" } else { "secure" };
        let tpart = if explicit { format!("type={t}") } else { t.to_string() };
        let s = match (&net, net_first) {
            (None, _) => tpart,
            (Some(n), false) => format!("{tpart},network={n}"),
            (Some(n), true) => format!("network={n},{tpart}"),
        };
        let m: Migration = s.parse().unwrap();
        let again: Migration = m.to_string().parse().unwrap();
        prop_assert_eq!(m, again);
        prop_assert_eq!(m.to_string().parse::<Migration>().unwrap().to_string(), m.to_string());
    }

    #[test]
    fn property_parsers_never_panic(s in "\\PC{0,40}") {
        let _ = s.parse::<Migration>();
        let _ = s.parse::<Bwlimit>();
    }

    #[test]
    fn bwlimit_print_parse_round_trip(
        v in prop::array::uniform5(prop::option::of(any::<u64>())),
    ) {
        let b = Bwlimit { clone: v[0], default: v[1], migration: v[2], move_: v[3], restore: v[4] };
        let again: Bwlimit = b.to_string().parse().unwrap();
        prop_assert_eq!(b, again);
    }
}
