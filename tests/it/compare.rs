//! `rootforge compare`: every row's size is what `rootforge build` writes
//! with the same options, every image reads back, and the options narrow
//! the matrix.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn compare_json(input: &Path, args: &[&str]) -> Vec<Value> {
    let out = run(rootforge()
        .args(["compare", "--json"])
        .arg(input)
        .args(args));
    let rows: Value = serde_json::from_slice(&out).unwrap();
    rows.as_array().unwrap().clone()
}

fn field<'a>(row: &'a Value, name: &str) -> &'a Value {
    row.get(name)
        .unwrap_or_else(|| panic!("row without {name}: {row}"))
}

/// The file `rootforge build` writes for a row, and the flags that make it.
fn build_flags(row: &Value) -> (String, Vec<String>) {
    let format = field(row, "format").as_str().unwrap();
    let comp = field(row, "comp").as_str().unwrap();
    let block = field(row, "block_size").as_u64();
    let mut flags = vec!["-f".to_owned(), format.to_owned()];
    let name = match format {
        "cpio" | "tar" => {
            flags.extend([format!("--{format}-compress"), comp.to_owned()]);
            let suffix = match comp {
                "none" => "",
                "gzip" => ".gz",
                "zstd" => ".zst",
                other => panic!("no suffix known for {other}"),
            };
            format!("rootfs.{format}{suffix}")
        }
        "squashfs" => {
            flags.extend([
                "--squashfs-comp".to_owned(),
                comp.to_owned(),
                "--squashfs-block-size".to_owned(),
                block.unwrap().to_string(),
            ]);
            "rootfs.squashfs".to_owned()
        }
        "ext4" => {
            flags.extend(["--ext-block-size".to_owned(), block.unwrap().to_string()]);
            "rootfs.ext4".to_owned()
        }
        other => panic!("unexpected format {other}"),
    };
    (name, flags)
}

#[test]
fn rows_are_the_sizes_build_writes_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tiny_corpus();
    let rows = compare_json(
        &input,
        &[
            "-f",
            "cpio,tar,squashfs,ext4",
            "--comp",
            "none,gzip,zstd",
            "--squashfs-block-sizes",
            "64K",
        ],
    );
    // 3 cpio, 3 tar, 3 squashfs, ext4 at 1K and 4K.
    assert_eq!(rows.len(), 11, "{rows:#?}");
    let baseline = rows
        .iter()
        .find(|r| r["format"] == "tar" && r["comp"] == "none")
        .and_then(|r| r["size"].as_u64())
        .unwrap();
    for row in &rows {
        assert_eq!(field(row, "verified"), &Value::Bool(true), "{row}");
        assert!(field(row, "error").is_null(), "{row}");
        assert!(field(row, "build_s").as_f64().unwrap() >= 0.0, "{row}");
        assert!(field(row, "read_s").as_f64().unwrap() >= 0.0, "{row}");
        let size = field(row, "size").as_u64().unwrap();
        let ratio = field(row, "ratio").as_f64().unwrap();
        assert!(
            (ratio - size as f64 / baseline as f64).abs() < 1e-9,
            "{row}"
        );

        let (name, flags) = build_flags(row);
        let out = tmp.path().join("out");
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        build(&input, &out, &flags);
        let built = std::fs::metadata(out.join(&name)).unwrap().len();
        assert_eq!(size, built, "{row}: rootforge build wrote {built} bytes");
        std::fs::remove_dir_all(&out).unwrap();
    }
    let levels: Vec<_> = rows
        .iter()
        .filter(|r| r["format"] == "cpio")
        .map(|r| r["level"].clone())
        .collect();
    assert_eq!(levels, [Value::Null, 9.into(), 19.into()]);
}

#[test]
fn options_narrow_the_matrix_and_bad_names_are_refused() {
    let input = tiny_corpus();
    let rows = compare_json(&input, &["-f", "iso9660", "--comp", "zisofs", "-q"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["comp"], "zisofs");
    assert_eq!(rows[0]["verified"], true);

    let rows = compare_json(&input, &["-f", "ext2,ext3,iso9660", "--comp", "none"]);
    let got: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r["format"], r["comp"]))
        .collect();
    assert_eq!(
        got,
        [
            r#""ext2" "none""#,
            r#""ext3" "none""#,
            r#""iso9660" "none""#
        ]
    );

    // The table: a header, the baseline, one line per row.
    let table = run(rootforge()
        .args(["compare", "-q", "-f", "tar", "--comp", "none,xz"])
        .arg(&input));
    let table = String::from_utf8(table).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("input: "), "{table}");
    assert!(lines[1].starts_with("format "), "{table}");
    assert!(lines[2].starts_with("tar       none "), "{table}");
    assert!(lines[2].contains(" 1.000 "), "{table}");
    assert!(lines[3].starts_with("tar       xz         9 "), "{table}");

    for (args, word) in [
        (&["--comp", "gzip,bogus"][..], "bogus"),
        (&["-f", "zip"][..], "zip"),
    ] {
        let out = rootforge()
            .arg("compare")
            .arg(&input)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(word));
    }

    let out = rootforge()
        .args(["compare", "/nonexistent/rootfs.tar"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rootfs.tar"));
    assert!(out.stdout.is_empty());
}

/// A variant that cannot hold the tree is a row with its error, not an
/// abort: ISO9660 refuses names longer than Linux reads whole (253 bytes).
#[test]
fn a_format_that_cannot_hold_the_tree_is_a_row_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("n".repeat(255)), b"x").unwrap();
    let rows = compare_json(&dir, &["-f", "iso9660,tar", "--comp", "none"]);
    assert_eq!(rows.len(), 2);
    let iso = &rows[0];
    assert_eq!(iso["format"], "iso9660");
    assert!(iso["size"].is_null() && iso["verified"].is_null(), "{iso}");
    assert!(iso["error"].as_str().unwrap().contains("nnnn"), "{iso}");
    assert_eq!(rows[1]["verified"], true);
}

#[test]
fn the_plot_has_one_point_per_image() {
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("plot.svg");
    run(rootforge()
        .args(["compare", "-q", "-f", "cpio,tar", "--comp", "none,gzip,lz4"])
        .arg(tiny_corpus())
        .arg("--plot")
        .arg(&svg));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg "), "{text}");
    for label in ["cpio none", "cpio lz4", "tar gzip"] {
        assert!(text.contains(&format!(">{label}</text>")), "{label}");
    }
    // A real XML parser reads it and counts the points.
    let circles = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.dom.minidom as m\n\
             d = m.parse(sys.argv[1])\n\
             assert d.documentElement.tagName == 'svg'\n\
             print(len(d.getElementsByTagName('circle')))",
        )
        .arg(&svg));
    assert_eq!(String::from_utf8(circles).unwrap().trim(), "6");
}
