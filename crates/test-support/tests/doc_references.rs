//! Every reference to a document in the repository's sources and docs points
//! at something that exists: `docs/<name>.md` is a file, each `§N` after it a
//! numbered section of that file, and each `README, "Title"` a heading of
//! README.md. Documents outside the repository are not cited.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// File kinds that hold comments, docs or configs.
const SCANNED: [&str; 5] = ["rs", "md", "toml", "sh", "py"];

/// Directories that hold no sources: build outputs, data, git.
const SKIPPED_DIRS: [&str; 5] = ["target", ".git", "data", "node_modules", "results-smoke"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scanned_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name) {
                scanned_files(&path, files);
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SCANNED.contains(&e))
        {
            files.push(path);
        }
    }
}

/// A heading's text without its `#`s.
fn headings(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
}

/// The section numbers of a document: "2.1" for a heading `### 2.1 Title`.
fn section_numbers(text: &str) -> BTreeSet<String> {
    headings(text)
        .filter_map(|h| h.split_whitespace().next())
        .map(|n| n.trim_end_matches('.').to_string())
        .filter(|n| !n.is_empty() && n.split('.').all(|p| p.parse::<u32>().is_ok()))
        .collect()
}

/// A section number at the start of `text` ("2.1" of "2.1 and"), and the rest.
fn leading_number(text: &str) -> Option<(String, &str)> {
    let len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number = text[..len].trim_end_matches('.');
    (!number.is_empty()).then(|| (number.to_string(), &text[number.len()..]))
}

/// The section numbers cited right after a document's name: `§2.1`,
/// `§2.1, §3`, `§2.1 and §3`, `§1.1–1.2`.
fn cited_sections(after: &str) -> Vec<String> {
    let mut rest = after.trim_start_matches('`').trim_start();
    let mut cited = Vec::new();
    let Some(mut tail) = rest.strip_prefix('§') else {
        return cited;
    };
    while let Some((number, after_number)) = leading_number(tail) {
        cited.push(number);
        rest = after_number;
        tail = if let Some(r) = [", §", " and §", ", and §"]
            .iter()
            .find_map(|sep| rest.strip_prefix(sep))
        {
            r
        } else if let Some(r) = rest.strip_prefix('–') {
            r
        } else {
            break;
        };
    }
    cited
}

/// What one file gets wrong, one line each.
fn dangling_references(file: &Path, text: &str, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let readme_headings: BTreeSet<&str> = headings(&readme).collect();
    let outside = [concat!("NO", "TES"), concat!("DES", "IGN")];
    for (i, line) in text.lines().enumerate() {
        let at = format!("{}:{}", file.display(), i + 1);
        for word in outside {
            if line.contains(word) {
                problems.push(format!(
                    "{at}: cites {word}, which is not in the repository"
                ));
            }
        }
        if line.contains(concat!("paper ", "§")) {
            problems.push(format!(
                "{at}: a section of the paper without its file; write docs/paper.md"
            ));
        }
        for (start, _) in line.match_indices("docs/") {
            let rest = &line[start + "docs/".len()..];
            let Some(end) = rest.find(".md") else {
                continue;
            };
            let name = &rest[..end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                continue;
            }
            let path = root.join("docs").join(format!("{name}.md"));
            let Ok(doc) = std::fs::read_to_string(&path) else {
                problems.push(format!("{at}: docs/{name}.md does not exist"));
                continue;
            };
            let sections = section_numbers(&doc);
            for cited in cited_sections(&rest[end + ".md".len()..]) {
                if !sections.contains(&cited) {
                    problems.push(format!("{at}: docs/{name}.md has no section {cited}"));
                }
            }
        }
        for (start, _) in line.match_indices("README") {
            let rest = line[start + "README".len()..].trim_start_matches(".md");
            let Some(title) = rest
                .strip_prefix(", \"")
                .or_else(|| rest.strip_prefix(" \""))
            else {
                continue;
            };
            let title = title.split('"').next().unwrap_or("");
            if !readme_headings.contains(title) {
                problems.push(format!("{at}: README.md has no heading \"{title}\""));
            }
        }
    }
    problems
}

#[test]
fn every_reference_to_a_document_points_at_an_existing_document_and_section() {
    let root = root();
    let mut files = Vec::new();
    scanned_files(&root, &mut files);
    let this_file = Path::new(file!()).file_name().expect("a file name");
    let problems: Vec<String> = files
        .iter()
        .filter(|f| f.file_name() != Some(this_file))
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let shown = f.strip_prefix(&root).unwrap_or(f);
            dangling_references(shown, &text, &root)
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} dangling references:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn cited_sections_read_lists_and_ranges() {
    assert_eq!(cited_sections(" §2.1, Table 1"), ["2.1"]);
    assert_eq!(cited_sections("` §2.1 and §3: 1.376 B"), ["2.1", "3"]);
    assert_eq!(cited_sections(" §2.2, §3)"), ["2.2", "3"]);
    assert_eq!(cited_sections(" §1.1–1.2)."), ["1.1", "1.2"]);
    assert_eq!(cited_sections(" says"), Vec::<String>::new());
}

#[test]
fn section_numbers_come_from_numbered_headings() {
    let doc = "# Title\n## 1. Method\n### 1.2 CKA\n## Notes\ntext 3.4\n";
    let expected: BTreeSet<String> = ["1", "1.2"].map(String::from).into();
    assert_eq!(section_numbers(doc), expected);
}

#[test]
fn a_missing_section_and_an_outside_document_are_reported() {
    let root = root();
    let text = format!(
        "see docs/paper.md §1.2 and §99\nsee docs/nowhere.md\n(see {} §1)\n",
        concat!("NO", "TES")
    );
    let problems = dangling_references(Path::new("x.rs"), &text, &root);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("no section 99"), "{problems:#?}");
    assert!(
        problems[1].contains("nowhere.md does not exist"),
        "{problems:#?}"
    );
    assert!(
        problems[2].contains("not in the repository"),
        "{problems:#?}"
    );
}
