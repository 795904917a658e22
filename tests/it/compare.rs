//! `rootforge compare`: every row's size is what `rootforge build` writes
//! with the same options, every image reads back, the options narrow and
//! widen the matrix, runs repeat, peers run beside `rootforge build` (and a
//! missing one is listed), and the JSON and CSV keep their schemas. No
//! timing is asserted beyond min <= median <= max.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn compare_report(input: &Path, args: &[&str]) -> Value {
    let out = run(rootforge()
        .args(["compare", "--json"])
        .arg(input)
        .args(args));
    serde_json::from_slice(&out).unwrap()
}

fn compare_json(input: &Path, args: &[&str]) -> Vec<Value> {
    compare_report(input, args)["rows"]
        .as_array()
        .unwrap()
        .clone()
}

/// `format comp level block` of every row.
fn columns(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let n = |v: &Value| v.as_u64().map_or_else(|| "-".to_owned(), |x| x.to_string());
            format!(
                "{} {} {} {}",
                r["format"].as_str().unwrap(),
                r["comp"].as_str().unwrap(),
                n(&r["level"]),
                n(&r["block_size"])
            )
        })
        .collect()
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
    let level = field(row, "level").as_u64();
    let mut flags = vec!["-f".to_owned(), format.to_owned()];
    let name = match format {
        "cpio" | "tar" => {
            flags.extend([format!("--{format}-compress"), comp.to_owned()]);
            if let Some(level) = level {
                flags.extend(["--compress-level".to_owned(), level.to_string()]);
            }
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
            if let Some(level) = level.filter(|_| comp != "none") {
                flags.extend(["--squashfs-level".to_owned(), level.to_string()]);
            }
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
            "--block-sizes",
            "64K",
            "--levels",
            "9",
        ],
    );
    // cpio and tar: none, gzip at 6 and 9, zstd at 3 and 9; squashfs: none,
    // gzip at 6 and 9, zstd at 15 and 9, each at 64K and 128K; ext4 at 4K.
    assert_eq!(rows.len(), 5 + 5 + 10 + 1, "{rows:#?}");
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
    assert_eq!(
        levels,
        [Value::Null, 6.into(), 9.into(), 3.into(), 9.into()]
    );
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

    // The table: the input and baseline, the machine, a header, one line
    // per row.
    let table = run(rootforge()
        .args(["compare", "-q", "-f", "tar", "--comp", "none,xz"])
        .arg(&input));
    let table = String::from_utf8(table).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("input: "), "{table}");
    assert!(lines[1].starts_with("machine: "), "{table}");
    assert!(lines[2].starts_with("format "), "{table}");
    assert!(lines[3].starts_with("tar       none "), "{table}");
    assert!(lines[3].contains(" 1.000 "), "{table}");
    assert!(lines[4].starts_with("tar       xz         6 "), "{table}");

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

/// The quick default: every format, each compressor at its default level,
/// one block size; the report names the machine and the versions.
#[test]
fn the_default_matrix_is_one_row_per_compressor() {
    let report = compare_report(&tiny_corpus(), &[]);
    let rows = report["rows"].as_array().unwrap();
    let mut want = Vec::new();
    for f in [
        "cpio", "erofs", "ext2", "ext3", "ext4", "iso9660", "squashfs", "tar",
    ] {
        match f {
            "erofs" => {
                for c in ["none -", "lz4 0", "lz4hc 9", "zstd 3", "deflate 1"] {
                    want.push(format!("{f} {c} 4096"));
                }
            }
            "cpio" | "tar" => {
                for c in [
                    "none -", "gzip 6", "bzip2 9", "lz4 9", "lzma 6", "lzo 9", "xz 6", "zstd 3",
                ] {
                    want.push(format!("{f} {c} -"));
                }
            }
            "ext2" | "ext3" | "ext4" => want.push(format!("{f} none - 4096")),
            "iso9660" => want.extend([format!("{f} none - -"), format!("{f} zisofs - -")]),
            _ => {
                for c in ["none -", "gzip 6", "lz4 0", "lzo 9", "xz 6", "zstd 15"] {
                    want.push(format!("{f} {c} 131072"));
                }
            }
        }
    }
    assert_eq!(columns(rows), want);
    for row in rows {
        assert_eq!(row["verified"], true, "{row}");
        assert_eq!(row["runs"], 1, "{row}");
    }
    assert_eq!(report["runs"], 1);
    assert!(report["peers"].is_null(), "no peers without --peers");
    let m = &report["machine"];
    assert!(m["cpus"].as_u64().unwrap() >= 1, "{m}");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(m["kernel"].as_str().unwrap(), kernel.trim());
    assert!(m["model"].is_string(), "{m}");
    let versions = report["versions"].as_array().unwrap();
    assert_eq!(versions[0][0], "rootforge");
    assert!(versions[0][1].as_str().unwrap().starts_with("rootforge "));
    assert!(report["baseline"].as_u64().unwrap() > 0);
    assert!(report["entries"].as_u64().unwrap() > 0);
}

/// `--all` is the full matrix: the block-size sweep, Buildroot's levels,
/// ext4 at 1K, a superset of the default.
#[test]
fn all_is_the_full_matrix() {
    let input = tiny_corpus();
    let all = columns(&compare_json(&input, &["--all", "-q"]));
    // 45, and erofs's 4 compressors at 4K and 64K pclusters and none.
    assert_eq!(all.len(), 54, "{all:#?}");
    let quick = columns(&compare_json(&input, &["-q"]));
    for row in &quick {
        assert!(all.contains(row), "{row} is not in --all");
    }
    for row in [
        "cpio zstd 19 -",
        "tar xz 9 -",
        "cpio gzip 9 -",
        "squashfs xz 6 1048576",
        "squashfs gzip 6 65536",
        "squashfs zstd 15 262144",
        "ext4 none - 1024",
    ] {
        assert!(all.contains(&row.to_owned()), "{row} missing from --all");
        assert!(!quick.contains(&row.to_owned()), "{row} in the default");
    }
}

#[test]
fn runs_report_the_median_with_min_and_max() {
    let report = compare_report(
        &tiny_corpus(),
        &["-f", "tar,squashfs", "--comp", "none,gzip", "--runs", "3"],
    );
    assert_eq!(report["runs"], 3);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for row in rows {
        assert_eq!(row["runs"], 3, "{row}");
        assert_eq!(row["verified"], true, "{row}");
        let (min, med, max) = (
            row["build_min_s"].as_f64().unwrap(),
            row["build_s"].as_f64().unwrap(),
            row["build_max_s"].as_f64().unwrap(),
        );
        assert!(min <= med && med <= max, "{row}");
    }
    // The table gains the min and max columns.
    let table = run(rootforge()
        .args([
            "compare", "-q", "-f", "tar", "--comp", "none", "--runs", "2",
        ])
        .arg(tiny_corpus()));
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("min s") && table.contains("max s"),
        "{table}"
    );
    assert!(table.contains("2 run(s) each"), "{table}");

    let out = rootforge()
        .args(["compare", "--runs", "0"])
        .arg(tiny_corpus())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runs"));
}

const CSV_HEADER: &str = "kind,name,version,format,comp,level,block_size,input,size,ratio,build_s,build_min_s,build_max_s,runs,read_s,verified,peak_rss_kib,ours_build_s,ours_size,ours_peak_rss_kib,time_x,size_x,rss_x,status,error";

/// A CSV line's fields (none of these hold a comma or a quote).
fn csv(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn csv_has_one_line_per_row_under_a_fixed_header() {
    let input = tiny_corpus();
    let out = run(rootforge()
        .args([
            "compare",
            "--csv",
            "-f",
            "cpio,squashfs",
            "--comp",
            "none,gzip",
        ])
        .arg(&input));
    let text = String::from_utf8(out).unwrap();
    let lines = csv(&text);
    assert_eq!(text.lines().next().unwrap(), CSV_HEADER);
    let header = &lines[0];
    assert_eq!(lines.len(), 1 + 4, "{text}");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows = compare_json(&input, &["-f", "cpio,squashfs", "--comp", "none,gzip"]);
    for (line, row) in lines[1..].iter().zip(&rows) {
        assert_eq!(line.len(), header.len(), "{line:?}");
        assert_eq!(line[col("kind")], "ours");
        assert_eq!(line[col("format")], row["format"].as_str().unwrap());
        assert_eq!(line[col("comp")], row["comp"].as_str().unwrap());
        assert_eq!(line[col("size")], row["size"].to_string());
        assert_eq!(line[col("runs")], "1");
        assert_eq!(line[col("verified")], "true");
        assert_eq!(line[col("status")], "verified");
        assert!(line[col("version")].starts_with("rootforge "));
        line[col("build_s")].parse::<f64>().unwrap();
    }
    let out = rootforge()
        .args(["compare", "--csv", "--json"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A PATH of symlinks to some of the peer tools: those run beside
/// `rootforge build` with the same settings, the others are rows that say
/// missing; the ours column is the very image the matrix row built.
#[test]
fn peers_run_beside_rootforge_build_and_missing_ones_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let mut have = vec!["tar", "cpio", "mksquashfs", "find", "sort"];
    if !is_root() {
        have.push("fakeroot");
    }
    for tool in have {
        std::os::unix::fs::symlink(require_tool(tool), bin.join(tool)).unwrap();
    }
    let svg = tmp.path().join("plot.svg");
    let input = tiny_corpus();
    let out = run(rootforge()
        .env("PATH", &bin)
        .args(["compare", "--json", "--peers", "--runs", "2"])
        .args(["-f", "cpio,tar,squashfs,ext2", "--comp", "none"])
        .arg("--plot")
        .arg(&svg)
        .arg(&input));
    let report: Value = serde_json::from_slice(&out).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let peers = report["peers"].as_array().unwrap();
    let status: Vec<String> = peers
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            "mksquashfs ok",
            "tar2sqfs missing",
            "genext2fs missing",
            "GNU cpio ok",
            "bsdtar newc missing",
            "bsdtar pax missing",
            "GNU tar ok"
        ],
        "{peers:#?}"
    );
    let tree = if is_root() {
        "tree (extracted as root)"
    } else {
        "tree (extracted under fakeroot)"
    };
    for p in peers {
        if p["status"] == "missing" {
            assert!(
                p["error"].as_str().unwrap().contains("not found on PATH"),
                "{p}"
            );
            assert!(p["size"].is_null() && p["build_s"].is_null(), "{p}");
            assert!(p["version"].is_null(), "{p}");
            continue;
        }
        assert!(p["error"].is_null(), "{p}");
        assert_eq!(p["input"], tree, "{p}");
        assert_eq!(p["runs"], 2, "{p}");
        assert!(!p["version"].as_str().unwrap().is_empty(), "{p}");
        let ours_cmd = p["ours_command"].as_str().unwrap();
        assert!(ours_cmd.contains(" build -q "), "{ours_cmd}");
        let get = |k: &str| p[k].as_f64().unwrap_or_else(|| panic!("{k}: {p}"));
        assert!(
            (get("time_x") - get("build_s") / get("ours_build_s")).abs() < 1e-9,
            "{p}"
        );
        assert!(
            (get("size_x") - get("size") / get("ours_size")).abs() < 1e-9,
            "{p}"
        );
        assert!(
            (get("rss_x") - get("peak_rss_kib") / get("ours_peak_rss_kib")).abs() < 1e-9,
            "{p}"
        );
        assert!(get("build_min_s") <= get("build_s") && get("build_s") <= get("build_max_s"));
    }
    // Ours for cpio and tar is the uncompressed image the matrix built.
    for (peer, format) in [("GNU cpio", "cpio"), ("GNU tar", "tar")] {
        let p = peers.iter().find(|p| p["name"] == peer).unwrap();
        let r = rows
            .iter()
            .find(|r| r["format"] == format && r["comp"] == "none")
            .unwrap();
        assert_eq!(p["ours_size"], r["size"], "{peer}");
    }
    let mks = peers.iter().find(|p| p["name"] == "mksquashfs").unwrap();
    assert!(
        mks["version"].as_str().unwrap().starts_with("mksquashfs"),
        "{mks}"
    );
    assert_eq!(mks["settings"], "gzip 9, 128K blocks");
    let versions = report["versions"].to_string();
    assert!(
        versions.contains("GNU tar") && versions.contains("GNU cpio"),
        "{versions}"
    );

    // The plot: rootforge dots and the peers' hollow squares (plus one of
    // each in the legend), the machine in the caption.
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("stroke-width=\"2\"").count(), 3 + 1, "{text}");
    assert!(text.contains(">mksquashfs</text>"), "{text}");
    assert!(text.contains("CPUs ("), "{text}");

    // The table says which are missing, and prints every version.
    let table = run(rootforge()
        .env("PATH", &bin)
        .args(["compare", "-q", "--peers", "-f", "tar", "--comp", "none"])
        .arg(&input));
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("bsdtar pax   tar"), "{table}");
    assert!(
        table.contains("missing: bsdtar not found on PATH"),
        "{table}"
    );
    assert!(table.contains("tar (GNU tar)"), "{table}");
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// SIGINT while the peers run removes the scratch directory (the extracted
/// tree and the outputs) before exiting as the signal would.
#[test]
fn an_interrupted_peer_run_leaves_no_scratch_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = rootforge()
        .env("TMPDIR", tmp.path())
        .args([
            "compare", "-q", "--peers", "--runs", "1000", "-f", "tar", "--comp", "none",
        ])
        .arg(tiny_corpus())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the peers' first outputs: the scratch space is in use.
    let busy = || {
        std::fs::read_dir(tmp.path()).unwrap().any(|e| {
            let p = e.unwrap().path();
            p.join("tree").is_dir() && std::fs::read_dir(&p).unwrap().count() > 1
        })
    };
    while !busy() {
        assert!(child.try_wait().unwrap().is_none(), "compare ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    run(Command::new("kill").args(["-INT", &pid]));
    let status = child.wait().unwrap();
    // Killed by the signal, or exited as a shell reports it (128 + 2).
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    assert!(
        signal == Some(2) || status.code() == Some(130),
        "{status:?}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
