//! Property tests: random documents print back byte for byte, reparse stably, and random edits
//! keep them parseable.

use proptest::prelude::*;
use pve_gitops_schema::corosync::{Document, NodeEntry};

#[derive(Debug, Clone)]
enum El {
    Blank(String),
    Comment(String, String),
    Kv {
        indent: String,
        key: String,
        pre: String,
        post: String,
        value: String,
        trailing: String,
    },
    Section {
        indent: String,
        name: String,
        style: usize,
        trailing: String,
        children: Vec<(El, bool)>,
        close_indent: String,
    },
}

fn ws() -> impl Strategy<Value = String> {
    "[ \t\u{a0}]{0,3}"
}

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:#\"./}_ -]{0,12}".prop_map(|v| v.trim_matches(' ').to_string())
}

fn leaf() -> impl Strategy<Value = El> {
    prop_oneof![
        ws().prop_map(El::Blank),
        (ws(), "[a-z{}:# ]{0,10}").prop_map(|(w, t)| El::Comment(w, t)),
        (ws(), "k[a-z0-9_.]{0,6}", ws(), ws(), value(), ws()).prop_map(
            |(indent, key, pre, post, value, trailing)| El::Kv {
                indent,
                key,
                pre,
                post,
                value,
                trailing
            }
        ),
    ]
}

fn element() -> impl Strategy<Value = El> {
    leaf().prop_recursive(3, 48, 6, |inner| {
        (
            ws(),
            "[a-z][a-z_]{0,6}",
            0..4usize,
            ws(),
            prop::collection::vec((inner, any::<bool>()), 0..6),
            ws(),
        )
            .prop_map(|(indent, name, style, trailing, children, close_indent)| {
                El::Section {
                    indent,
                    name,
                    style,
                    trailing,
                    children,
                    close_indent,
                }
            })
    })
}

fn eol(crlf: bool) -> &'static str {
    if crlf {
        "\r\n"
    } else {
        "\n"
    }
}

fn render(el: &El, crlf: bool, out: &mut String) {
    match el {
        El::Blank(w) => out.push_str(w),
        El::Comment(w, t) => out.push_str(&format!("{w}#{t}")),
        El::Kv {
            indent,
            key,
            pre,
            post,
            value,
            trailing,
        } => out.push_str(&format!("{indent}{key}{pre}:{post}{value}{trailing}")),
        El::Section {
            indent,
            name,
            style,
            trailing,
            children,
            close_indent,
        } => {
            let header = match style {
                0 => format!("{name} {{"),
                1 => format!("{name}{{"),
                2 => format!("{name}: {{"),
                _ => format!("{name} :{{"),
            };
            out.push_str(&format!("{indent}{header}{trailing}{}", eol(crlf)));
            for (child, c) in children {
                render(child, *c, out);
                out.push_str(eol(*c));
            }
            out.push_str(&format!("{close_indent}}}"));
        }
    }
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((element(), any::<bool>()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(els, final_eol)| {
            let mut out = String::new();
            let n = els.len();
            for (i, (el, crlf)) in els.iter().enumerate() {
                render(el, *crlf, &mut out);
                if i + 1 < n || final_eol {
                    out.push_str(eol(*crlf));
                }
            }
            out
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Set(Vec<String>, String, String),
    Remove(Vec<String>, String),
    AddNode(String, u32, String),
    RemoveNode(String),
    SetRing(String, u8, String),
    AddInterface(u8, String),
    RemoveInterface(u8),
    RemoveRing(u8),
    Bump,
}

fn edit() -> impl Strategy<Value = Edit> {
    let path = prop::collection::vec("[a-z][a-z_]{0,6}", 0..3);
    let clean = "[a-zA-Z0-9:./_-]{1,10}";
    prop_oneof![
        (path.clone(), "k[a-z0-9_]{0,4}", clean).prop_map(|(p, k, v)| Edit::Set(p, k, v)),
        (path, "k[a-z0-9_]{0,4}").prop_map(|(p, k)| Edit::Remove(p, k)),
        ("n[a-z0-9]{0,4}", 1..100u32, clean).prop_map(|(n, id, a)| Edit::AddNode(n, id, a)),
        "n[a-z0-9]{0,4}".prop_map(Edit::RemoveNode),
        ("n[a-z0-9]{0,4}", 0..8u8, clean).prop_map(|(n, l, a)| Edit::SetRing(n, l, a)),
        (0..8u8, clean).prop_map(|(l, p)| Edit::AddInterface(l, p)),
        (0..8u8).prop_map(Edit::RemoveInterface),
        (0..8u8).prop_map(Edit::RemoveRing),
        Just(Edit::Bump),
    ]
}

fn apply(doc: &mut Document, e: &Edit) {
    match e {
        Edit::Set(p, k, v) => {
            let p: Vec<&str> = p.iter().map(String::as_str).collect();
            doc.set(&p, k, v);
            assert_eq!(doc.get(&p, k), Some(v.as_str()));
        }
        Edit::Remove(p, k) => {
            let p: Vec<&str> = p.iter().map(String::as_str).collect();
            doc.remove(&p, k);
            assert_eq!(doc.get(&p, k), None);
        }
        Edit::AddNode(name, id, addr) => {
            let before = doc.view().nodes.len();
            doc.add_node(&NodeEntry {
                name: name.clone(),
                nodeid: *id,
                quorum_votes: 1,
                rings: [(0, addr.clone())].into(),
            });
            assert_eq!(doc.view().nodes.len(), before + 1);
        }
        Edit::RemoveNode(name) => {
            doc.remove_node(name);
            assert!(doc.view().node_by_name(name).is_none());
        }
        Edit::SetRing(name, link, addr) => {
            if doc.set_ring_addr(name, *link, addr) {
                let view = doc.view();
                let node = view
                    .nodes
                    .iter()
                    .rev()
                    .find(|n| n.name.as_deref() == Some(name.as_str()));
                assert_eq!(node.and_then(|n| n.rings.get(link)), Some(addr));
            }
        }
        Edit::AddInterface(link, prio) => {
            doc.add_interface(*link, &[("knet_transport", prio)]);
            assert!(doc.view().totem.interfaces.contains_key(link));
        }
        Edit::RemoveInterface(link) => {
            doc.remove_interface(*link);
            assert!(!doc.view().totem.interfaces.contains_key(link));
        }
        Edit::RemoveRing(link) => {
            doc.remove_ring_addr_everywhere(*link);
            assert!(doc.view().nodes.iter().all(|n| !n.rings.contains_key(link)));
        }
        Edit::Bump => {
            let before = doc.view().totem.config_version.unwrap_or(0);
            assert_eq!(doc.bump_config_version(), before + 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_parse_is_identity(src in document()) {
        let doc = Document::parse(&src).map_err(|e| TestCaseError::fail(format!("{e}\n{src:?}")))?;
        prop_assert_eq!(doc.to_string(), src.clone());
        let again = Document::parse(&doc.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &doc);
        prop_assert_eq!(again.view(), doc.view());
    }

    #[test]
    fn edits_keep_documents_parseable(src in document(), edits in prop::collection::vec(edit(), 1..8)) {
        let mut doc = Document::parse(&src).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for e in &edits {
            apply(&mut doc, e);
            let text = doc.to_string();
            let again = Document::parse(&text)
                .map_err(|err| TestCaseError::fail(format!("after {e:?}: {err}\n{text:?}")))?;
            prop_assert_eq!(again.to_string(), text);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_prints_back(src in "[a-z{}:# \t\u{a0}\r\n]{0,200}") {
        let (doc, _) = Document::parse_recovering("x", &src);
        prop_assert_eq!(doc.to_string(), src);
        let _ = doc.view();
        let _ = doc.verify();
        let _ = doc.check_pve_writable();
    }
}
