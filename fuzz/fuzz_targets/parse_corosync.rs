//! Fuzz the corosync.conf parser: printing a parsed document gives back the input, and
//! parse(print(parse(x))) is stable. Run with `cargo +nightly fuzz run parse_corosync`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pve_gitops_schema::corosync::Document;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // Every input, valid or not, prints back unchanged (bad lines are kept as decor).
    let (doc, errors) = Document::parse_recovering("fuzz", src);
    let printed = doc.to_string();
    assert_eq!(printed, src, "print(parse(x)) != x");
    let _ = doc.view();
    let _ = doc.verify();
    let _ = doc.check_pve_writable();
    if errors.is_empty() {
        let doc = Document::parse(src).expect("no errors reported, so it parses");
        let again = Document::parse(&doc.to_string()).expect("reparse of printed text");
        assert_eq!(
            again.to_string(),
            printed,
            "parse(print(parse(x))) is not stable"
        );
        assert_eq!(again.view(), doc.view());
    }
});
