//! The build id vectors of `conformance/build_id.json`: the hash every client computes from
//! a `hearthd` binary's `stat` to tell whether the daemon it finds is the one it would start
//! (docs/PROTOCOL.md §9.1). The Node, Python and Neovim clients run the same file.

use hearth_protocol::build_id::identity_hash;

fn word(case: &serde_json::Value, key: &str) -> u64 {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a decimal string in {case}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {case}: {e}"))
}

#[test]
fn every_vector_hashes_to_its_documented_value() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/build_id.json");
    let text = std::fs::read_to_string(path).expect("conformance/build_id.json is readable");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let cases = doc["cases"].as_array().expect("a cases array");
    assert!(cases.len() >= 5, "too few vectors: {}", cases.len());
    for case in cases {
        let got = identity_hash(
            word(case, "size"),
            word(case, "mtime_sec"),
            word(case, "mtime_nsec"),
            word(case, "ino"),
            word(case, "dev"),
        );
        assert_eq!(
            got,
            case["hash"].as_str().expect("hash"),
            "{}",
            case["name"]
        );
    }
}
