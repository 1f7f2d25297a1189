//! The committed `schema/cluster.schema.json` must equal what the types generate.
//! Refresh with `UPDATE_SCHEMA=1 cargo test -p pve-gitops-schema --test json_schema`.

use std::path::Path;

#[test]
fn committed_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.schema.json");
    let generated = pve_gitops_schema::spec::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/cluster.schema.json is out of date with the Rust types; run \
         `UPDATE_SCHEMA=1 cargo test -p pve-gitops-schema --test json_schema` and commit it"
    );
}

#[test]
fn schema_rejects_unknown_fields_and_names_every_node_field() {
    let v: serde_json::Value =
        serde_json::from_str(&pve_gitops_schema::spec::json_schema()).unwrap();
    assert_eq!(v["additionalProperties"], serde_json::Value::Bool(false));
    let node = &v["$defs"]["Node"]["properties"];
    for f in [
        "name",
        "nodeid",
        "quorum_votes",
        "ring0_addr",
        "ring7_addr",
        "addresses",
        "state",
    ] {
        assert!(node.get(f).is_some(), "Node.{f} missing from schema");
    }
}
