//! README's claims table is the one the committed results give: a changed
//! result, gate or claim without `paper-figures --readme README.md` fails here.

use std::path::Path;

use paper_figures::claims::{END, START, claims_table, with_claims};

#[test]
fn readme_claims_table_is_the_committed_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let table = claims_table(&root.join("results")).expect("the committed results read");
    let expected = with_claims(&readme, &table).expect("README has the claims markers");
    assert!(
        readme == expected,
        "README's claims table ({START} … {END}) differs from the committed results; run \
         `cargo run -p paper-figures -- --readme README.md`"
    );
}
