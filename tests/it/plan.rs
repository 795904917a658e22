//! The precedence rule of `BuildPlan::resolve`, option by option: the
//! command line, then the config file, then the profile, then the default.

use std::path::Path;

use clap::Parser;
use rootforge::cli::{Cli, Command, Config};
use rootforge::plan::{BuildPlan, Env};

const ENV: Env = Env {
    source_date_epoch: None,
    cores: 2,
};

/// The plan of `rootforge build -o out ARGS` with `toml` as its config file.
fn resolve(args: &[&str], toml: &str) -> anyhow::Result<BuildPlan> {
    let argv = ["rootforge", "build", "-o", "out"].iter().chain(args);
    let Command::Build(cli) = Cli::try_parse_from(argv)?.command else {
        panic!("not build");
    };
    let file = Config::parse(toml, Path::new("/cfg/images.toml"))?.layer();
    BuildPlan::resolve(cli.layer()?, file, ENV)
}

/// One option: its flag(s), its config text, and what the plan holds.
struct Case {
    name: &'static str,
    flag: &'static [&'static str],
    config: &'static str,
    get: fn(&BuildPlan) -> String,
    from_flag: &'static str,
    from_config: &'static str,
    default: &'static str,
}

fn check(c: &Case) {
    let get = |args: &[&str], toml: &str| {
        let plan = resolve(args, toml).unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
        (c.get)(&plan)
    };
    assert_eq!(get(c.flag, ""), c.from_flag, "{}: the flag alone", c.name);
    assert_eq!(
        get(&[], c.config),
        c.from_config,
        "{}: the config alone",
        c.name
    );
    assert_eq!(
        get(c.flag, c.config),
        c.from_flag,
        "{}: the flag over the config",
        c.name
    );
    assert_eq!(get(&[], ""), c.default, "{}: the default", c.name);
}

macro_rules! cases {
    ($($name:literal: $flag:expr, $config:literal => |$p:ident| $get:expr; $f:literal, $c:literal, $d:literal;)*) => {
        [$(Case {
            name: $name,
            flag: &$flag,
            config: $config,
            get: |$p: &BuildPlan| format!("{:?}", $get),
            from_flag: $f,
            from_config: $c,
            default: $d,
        }),*]
    };
}

#[test]
fn every_option_takes_the_command_line_then_the_file_then_the_default() {
    use rootforge::format::Format::{Cpio, Ext4, Squashfs, Tar};
    fn img(p: &BuildPlan, f: rootforge::format::Format) -> rootforge::plan::ImageSettings {
        p.images.get(&f).cloned().unwrap_or_default()
    }
    let cases = cases![
        "input": ["in.tar"], "input = \"r.tar\"" => |p| p.input.to_string(); "\"in.tar\"", "\"/cfg/r.tar\"", "\"the bundled example rootfs\"";
        "formats": ["-f", "tar,cpio"], "formats = [\"ext4\"]" => |p| p.formats.clone(); "[Cpio, Tar]", "[Ext4]", "[Cpio, Erofs, Ext2, Ext3, Ext4, Iso9660, Squashfs, Tar]";
        "jobs": ["-j", "3"], "jobs = 5" => |p| p.jobs; "3", "5", "2";
        "arch": ["--arch", "arm"], "arch = \"arm64\"" => |p| p.arch.to_string(); "\"arm\"", "\"arm64\"", "\"x86_64\"";
        "compress": ["--compress", "gzip"], "compress = \"xz\"" => |p| (img(p, Cpio).compression, img(p, Squashfs).compression); "(Gzip, None)", "(Xz, None)", "(None, None)";
        "cpio compress": ["--cpio-compress", "zstd"], "[images.cpio]\ncompress = \"lz4\"" => |p| (img(p, Cpio).compression, img(p, Tar).compression); "(Zstd, None)", "(Lz4, None)", "(None, None)";
        "tar compress": ["--tar-compress", "bzip2"], "[images.tar]\ncompress = \"lzo\"" => |p| img(p, Tar).compression; "Bzip2", "Lzo", "None";
        "ext compress": ["--ext-compress", "lzma"], "[images.ext4]\ncompress = \"gzip\"" => |p| img(p, Ext4).compression; "Lzma", "Gzip", "None";
        "level": ["--compress-level", "3"], "[images.cpio]\nlevel = 7" => |p| img(p, Cpio).level; "Some(3)", "Some(7)", "None";
        "config level": ["--compress-level", "4"], "compress_level = 5" => |p| img(p, Tar).level; "Some(4)", "Some(5)", "None";
        "cpio format": ["--cpio-format", "crc"], "[images.cpio]\nformat = \"newc\"" => |p| p.options.cpio.format; "Some(Crc)", "Some(Newc)", "None";
        "squashfs comp": ["--squashfs-comp", "xz"], "[images.squashfs]\ncomp = \"zstd\"" => |p| p.options.squashfs.comp.map(|c| c.name()); "Some(\"xz\")", "Some(\"zstd\")", "None";
        "squashfs level": ["--squashfs-level", "9"], "[images.squashfs]\nlevel = 3" => |p| p.options.squashfs.level; "Some(9)", "Some(3)", "None";
        "squashfs block": ["--squashfs-block-size", "64K"], "[images.squashfs]\nblock_size = \"1M\"" => |p| p.options.squashfs.block_size; "Some(65536)", "Some(1048576)", "None";
        "squashfs bcj": ["--squashfs-bcj", "arm"], "[images.squashfs]\nbcj = \"x86\"" => |p| p.options.squashfs.bcj.is_some(); "true", "true", "false";
        "ext size": ["--ext-size", "64M"], "[images.ext4]\nsize = \"auto\"" => |p| p.options.ext.size.map(|s| s.to_string()); "Some(\"64M\")", "Some(\"auto\")", "None";
        "ext headroom": ["--ext-headroom", "1M"], "[images.ext4]\nheadroom = 4096" => |p| p.options.ext.headroom; "Some(1048576)", "Some(4096)", "None";
        "ext block": ["--ext-block-size", "1K"], "[images.ext2]\nblock_size = 2048" => |p| p.options.ext.block_size; "Some(1024)", "Some(2048)", "None";
        "ext inodes": ["--ext-inodes", "100"], "[images.ext4]\ninodes = 200" => |p| p.options.ext.inodes; "Some(100)", "Some(200)", "None";
        "ext inode size": ["--ext-inode-size", "128"], "[images.ext4]\ninode_size = 256" => |p| p.options.ext.inode_size; "Some(128)", "Some(256)", "None";
        "ext reserved": ["--ext-reserved-percent", "1"], "[images.ext4]\nreserved_percent = 2" => |p| p.options.ext.reserved_percent; "Some(1)", "Some(2)", "None";
        "ext label": ["--ext-label", "a"], "[images.ext3]\nlabel = \"b\"" => |p| p.options.ext.label.clone(); "Some(\"a\")", "Some(\"b\")", "None";
        "ext uuid": ["--ext-uuid", "00112233-4455-6677-8899-aabbccddeeff"], "[images.ext4]\nuuid = \"ffeeddccbbaa99887766554433221100\"" => |p| p.options.ext.uuid.map(|u| u.to_string()); "Some(\"00112233-4455-6677-8899-aabbccddeeff\")", "Some(\"ffeeddcc-bbaa-9988-7766-554433221100\")", "None";
        "ext features": ["--ext-features", "^metadata_csum"], "[images.ext4]\nfeatures = \"^huge_file\"" => |p| p.options.ext.features.clone(); "Some(\"^metadata_csum\")", "Some(\"^huge_file\")", "None";
        "iso volume id": ["--iso-volume-id", "A"], "[images.iso9660]\nvolume_id = \"B\"" => |p| p.options.iso9660.volume_id.clone(); "Some(\"A\")", "Some(\"B\")", "None";
        "iso bios": ["--iso-boot-bios", "a.bin"], "[images.iso9660]\nboot_bios = \"b.bin\"" => |p| p.options.iso9660.boot_bios.clone(); "Some(\"a.bin\")", "Some(\"b.bin\")", "None";
        "iso efi": ["--iso-boot-efi", "a.img"], "[images.iso9660]\nboot_efi = \"b.img\"" => |p| p.options.iso9660.boot_efi.clone(); "Some(\"a.img\")", "Some(\"b.img\")", "None";
        "iso efi dir": ["--iso-efi-dir", "a"], "[images.iso9660]\nefi_dir = \"b\"" => |p| p.options.iso9660.efi_dir.clone(); "Some(\"a\")", "Some(\"b\")", "None";
        "iso hybrid": ["--iso-hybrid", "a"], "[images.iso9660]\nhybrid = \"b\"" => |p| p.options.iso9660.hybrid.clone(); "Some(\"a\")", "Some(\"b\")", "None";
        "iso kernel": ["--iso-kernel", "a"], "[images.iso9660]\nkernel = \"b\"" => |p| p.options.iso9660.kernel.clone(); "Some(\"a\")", "Some(\"b\")", "None";
        "profile": ["--profile", "buildroot"], "profile = \"buildroot\"" => |p| (p.profile, p.all_root, p.options.cpio.init); "(Some(Buildroot), true, true)", "(Some(Buildroot), true, true)", "(None, false, false)";
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn switches_are_on_when_any_layer_turns_them_on() {
    use rootforge::format::Format::Iso9660;
    type Switch = (&'static str, &'static str, fn(&BuildPlan) -> bool);
    let switches: [Switch; 16] = [
        ("--all-root", "all_root = true", |p| p.all_root),
        ("--ignore-zeros", "ignore_zeros = true", |p| p.ignore_zeros),
        ("--keep-uncompressed", "keep_uncompressed = true", |p| {
            p.keep_uncompressed
        }),
        ("--buildroot-names", "buildroot_names = true", |p| {
            p.buildroot_names
        }),
        ("--systemd-var-factory", "systemd_var_factory = true", |p| {
            p.systemd.var_factory
        }),
        ("--systemd-tmpfiles", "systemd_tmpfiles = true", |p| {
            p.systemd.tmpfiles
        }),
        ("--systemd-preset-all", "systemd_preset_all = true", |p| {
            p.systemd.preset
        }),
        ("--cpio-init", "[images.cpio]\ninit = true", |p| {
            p.options.cpio.init
        }),
        ("--cpio-uimage", "[images.cpio]\nuimage = true", |p| {
            p.options.cpio.uimage
        }),
        (
            "--squashfs-extreme",
            "[images.squashfs]\nextreme = true",
            |p| p.options.squashfs.extreme,
        ),
        (
            "--squashfs-no-exports",
            "[images.squashfs]\nno_exports = true",
            |p| p.options.squashfs.no_exports,
        ),
        (
            "--squashfs-no-pad",
            "[images.squashfs]\nno_pad = true",
            |p| p.options.squashfs.no_pad,
        ),
        (
            "--squashfs-always-fragments",
            "[images.squashfs]\nalways_fragments = true",
            |p| p.options.squashfs.always_fragments,
        ),
        (
            "--iso-no-joliet",
            "[images.iso9660]\nno_joliet = true",
            |p| p.options.iso9660.no_joliet,
        ),
        ("--iso-zisofs", "[images.iso9660]\nzisofs = true", |p| {
            p.options.iso9660.zisofs
        }),
        (
            "--iso-volume-id=X",
            "[images.iso9660]\nvolume_id = \"X\"",
            |p| p.images.contains_key(&Iso9660) && p.options.iso9660.volume_id.is_some(),
        ),
    ];
    for (flag, config, get) in switches {
        assert!(get(&resolve(&[flag], "").unwrap()), "{flag}");
        assert!(get(&resolve(&[], config).unwrap()), "{config}");
        assert!(!get(&resolve(&[], "").unwrap()), "{flag} is off by default");
    }
}

#[test]
fn lists_are_the_files_then_the_command_lines() {
    let plan = resolve(
        &[
            "--users-table", "u2", "--device-table", "d2", "--overlay", "cpio:o2",
            "--post-image", "cpio:c2", "--iso-boot-menu", "m2:x",
        ],
        "users_tables = [\"u1\"]\ndevice_tables = [\"d1\"]\n[images.cpio]\noverlays = [\"o1\"]\npost_image = \"c1\"\n[images.iso9660]\nboot_menu = [\"m1:x\"]\n",
    )
    .unwrap();
    let cpio = &plan.images[&rootforge::format::Format::Cpio];
    assert_eq!(plan.users_tables, [Path::new("/cfg/u1"), Path::new("u2")]);
    assert_eq!(plan.device_tables, [Path::new("/cfg/d1"), Path::new("d2")]);
    assert_eq!(cpio.overlays, [Path::new("/cfg/o1"), Path::new("o2")]);
    assert_eq!(cpio.post_image, ["c1", "c2"]);
    assert_eq!(plan.options.iso9660.boot_menu, ["m1:x", "m2:x"]);
}

#[test]
fn bad_layers_are_refused_with_their_names() {
    let err = |args: &[&str], toml: &str| format!("{:#}", resolve(args, toml).unwrap_err());
    assert!(
        err(&[], "[images.squashfs]\ncompress = \"gzip\"").contains("unknown field `compress`")
    );
    assert!(err(&[], "[images.iso9660]\ncompress = \"gzip\"").contains("no outer compression"));
    assert!(err(&[], "[images.cpio]\nbogus = 1").contains("[images.cpio]"));
    assert!(err(&[], "[images.zip]\n").contains("unknown format `zip`"));
    assert!(err(&[], "compress = \"zip\"").contains("zip"));
    assert!(
        err(&[], "[images.squashfs]\ncomp = \"brotli\"").contains("unknown squashfs compressor")
    );
    assert!(err(&[], "[images.ext4]\nsize = \"12Q\"").contains("bad size suffix"));
    assert!(err(&["-j", "0"], "").contains("--jobs must be at least 1"));
    assert!(err(&["-f", "tar", "--post-image", "cpio:true"], "").contains("not among the formats"));
    assert!(err(&["-f", "iso9660", "--iso-initrd", "--iso-kernel", "k"], "").contains("add cpio"));
}
