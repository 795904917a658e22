//! Booting a Debian kernel from our ISO9660 images.
//!
//! qemu's firmware boots the image the way a real machine would, BIOS
//! (SeaBIOS, El Torito or the isohybrid MBR, then ISOLINUX) and UEFI (OVMF,
//! the El Torito EFI image or the GPT's EFI system partition, then a
//! standalone grub). The boot loader reads the kernel and the initramfs
//! from the ISO9660 tree and the kernel's init prints a marker naming the
//! loader whose command line it got, then powers off.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::util::*;

const ISOLINUX: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const ISOHDPFX: &str = "/usr/lib/ISOLINUX/isohdpfx.bin";
const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
const GRUB_EFI_MODULES: &str = "/usr/lib/grub/x86_64-efi";
// The 4 MiB flash layout, which Debian ships from bookworm on.
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The kernel's init prints this followed by the loader's name, which only
/// the boot loader's configuration gives it (`rootforge_loader=` on the
/// kernel command line reaches init's environment).
const MARKER: &str = "rootforge-iso-boot-ok via";
const INIT: &str = "#!/.rftest/busybox sh\n\
    /.rftest/busybox echo \"rootforge-iso-boot-ok via $rootforge_loader\"\n\
    /.rftest/busybox poweroff -f\n";

/// Both loaders' kernel command lines carry [`crate::vm::KERNEL_ARGS`].
const ISOLINUX_CFG: &str = "SERIAL 0 115200\n\
    DEFAULT linux\n\
    LABEL linux\n\
    \x20 KERNEL /boot/vmlinuz\n\
    \x20 APPEND console=ttyS0 initrd=/boot/initrd rdinit=/init panic=-1 no_timer_check rootforge_loader=isolinux\n";

/// The firmware's console is the serial port, so grub needs no terminal
/// setup. `search` finds the ISO9660 tree on a CD and on a hybrid disk.
const GRUB_CFG: &str = "search --no-floppy --file --set=root /boot/vmlinuz\n\
    linux /boot/vmlinuz console=ttyS0 rdinit=/init panic=-1 no_timer_check rootforge_loader=grub\n\
    initrd /boot/initrd\n\
    boot\n";

#[derive(Clone, Copy, Debug)]
enum Firmware {
    Bios,
    Uefi,
}

#[derive(Clone, Copy, Debug)]
enum Media {
    Cdrom,
    Disk,
}

/// A host file the test needs, or a failure naming its Debian package.
fn host_file(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(p.exists(), "{path} is missing: apt-get install {package}");
    p
}

/// Writes `boot/vmlinuz` and `boot/initrd` under `dir`. The initrd is the
/// harness's archive (for its busybox) followed by a cpio image rootforge
/// built of a directory holding the marker `/init`.
fn add_kernel_and_initrd(dir: &Path, work: &Path) {
    let crate::vm::Harness {
        kernel,
        initramfs: harness,
    } = crate::vm::harness();
    let stage = work.join("init-stage");
    fs::create_dir_all(&stage).unwrap();
    fs::write(stage.join("init"), INIT).unwrap();
    fs::set_permissions(stage.join("init"), fs::Permissions::from_mode(0o755)).unwrap();
    let cpio = work.join("init-cpio");
    build(&stage, &cpio, &["-f", "cpio", "--all-root"]);

    let boot = dir.join("boot");
    fs::create_dir_all(&boot).unwrap();
    fs::copy(kernel, boot.join("vmlinuz")).unwrap();
    // GNU cpio pads the harness to 512 bytes, so the next archive may
    // follow it directly.
    let mut initrd = fs::read(harness).unwrap();
    initrd.extend(fs::read(cpio.join("rootfs.cpio")).unwrap());
    fs::write(boot.join("initrd"), initrd).unwrap();
}

/// Adds ISOLINUX, its configuration, the kernel and the initrd to `dir`.
fn add_isolinux(dir: &Path) {
    let isolinux = dir.join("isolinux");
    fs::create_dir_all(&isolinux).unwrap();
    fs::copy(
        host_file(ISOLINUX, "isolinux"),
        isolinux.join("isolinux.bin"),
    )
    .unwrap();
    fs::copy(
        host_file(LDLINUX, "syslinux-common"),
        isolinux.join("ldlinux.c32"),
    )
    .unwrap();
    fs::write(isolinux.join("isolinux.cfg"), ISOLINUX_CFG).unwrap();
}

/// A directory holding EFI/BOOT/BOOTX64.EFI: grub with its configuration
/// and the modules it needs in its memdisk, made by the host's grub.
fn grub_efi_dir(work: &Path) -> PathBuf {
    let mkstandalone = require_tool("grub-mkstandalone");
    host_file(GRUB_EFI_MODULES, "grub-efi-amd64-bin");
    let cfg = work.join("grub.cfg");
    fs::write(&cfg, GRUB_CFG).unwrap();
    let efi = work.join("efi");
    let boot = efi.join("EFI/BOOT");
    fs::create_dir_all(&boot).unwrap();
    let mut embed = std::ffi::OsString::from("boot/grub/grub.cfg=");
    embed.push(&cfg);
    run(Command::new(mkstandalone)
        .args(["-O", "x86_64-efi", "-d", GRUB_EFI_MODULES])
        .args(["--locales=", "--fonts=", "--themes="])
        .arg(
            "--install-modules=normal iso9660 part_msdos part_gpt search \
             search_fs_file linux echo",
        )
        .arg("--modules=iso9660 part_msdos part_gpt search_fs_file")
        .arg("-o")
        .arg(boot.join("BOOTX64.EFI"))
        .arg(embed));
    efi
}

/// Builds the ISO9660 image of the example rootfs with `args` into
/// `work/name` and returns its path.
fn iso(work: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = work.join(name);
    build(&example_tar(), &out, &[&["-f", "iso9660"], args].concat());
    out.join("rootfs.iso9660")
}

fn overlay(dir: &Path) -> String {
    format!("iso9660:{}", dir.to_str().expect("a UTF-8 temporary path"))
}

/// qemu's option syntax doubles a comma inside a value.
fn qemu_path(path: &Path) -> String {
    path.to_str()
        .expect("a UTF-8 temporary path")
        .replace(',', ",,")
}

/// Boots `image` and asserts that the kernel's init ran from the initrd
/// that the boot loader `loader` loaded.
fn boot(firmware: Firmware, media: Media, image: &Path, loader: &str, work: &Path) {
    let what = format!("{} as {media:?} with {firmware:?}", image.display());
    let mut cmd = Command::new(require_tool("qemu-system-x86_64"));
    // KVM hangs on these machines.
    cmd.args(["-machine", "accel=tcg", "-m", "512"])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-serial", "stdio", "-no-reboot"]);
    if let Firmware::Uefi = firmware {
        let code = host_file(OVMF_CODE, "ovmf");
        // The firmware writes its boot entries to its variable store.
        let vars = work.join("OVMF_VARS.fd");
        fs::copy(host_file(OVMF_VARS, "ovmf"), &vars).unwrap();
        cmd.arg("-drive").arg(format!(
            "if=pflash,format=raw,readonly=on,file={}",
            qemu_path(&code)
        ));
        cmd.arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", qemu_path(&vars)));
    }
    // A snapshot: nothing the guest does reaches the image.
    let media_opt = match media {
        Media::Cdrom => ",media=cdrom",
        Media::Disk => "",
    };
    cmd.arg("-drive").arg(format!(
        "file={},format=raw,if=ide,snapshot=on{media_opt}",
        qemu_path(image)
    ));

    let start = Instant::now();
    let (status, console) = crate::vm::run_qemu(&what, &mut cmd, &work.join("console.log"), MARKER);
    let want = format!("{MARKER} {loader}");
    assert!(
        status.success() && console.contains(&want),
        "{what}: no `{want}` on the console (qemu {status}): {}\nconsole:\n{console}",
        crate::vm::boot_failure(&console, MARKER)
    );
    eprintln!(
        "boot_iso: {what}: {loader} booted the kernel in {:.1?}",
        start.elapsed()
    );
}

#[test]
fn both_loaders_pass_the_harness_kernel_args() {
    for cfg in [ISOLINUX_CFG, GRUB_CFG] {
        assert!(cfg.contains(crate::vm::KERNEL_ARGS), "{cfg}");
    }
}

/// SeaBIOS boots ISOLINUX through El Torito (with the boot info table our
/// writer patches in), and through the isohybrid MBR from a hard disk;
/// ISOLINUX loads the kernel and the initrd from the ISO9660 tree.
#[test]
fn isolinux_iso_boots_a_debian_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("files");
    add_isolinux(&dir);
    add_kernel_and_initrd(&dir, tmp.path());
    let files = overlay(&dir);
    let args = [
        "--overlay",
        &files,
        "--iso-boot-bios",
        "isolinux/isolinux.bin",
    ];

    let cd = iso(tmp.path(), "cd", &args);
    boot(Firmware::Bios, Media::Cdrom, &cd, "isolinux", tmp.path());

    let isohdpfx = host_file(ISOHDPFX, "isolinux");
    let hybrid_args = [&args[..], &["--iso-hybrid", isohdpfx.to_str().unwrap()]].concat();
    let hybrid = iso(tmp.path(), "hybrid", &hybrid_args);
    boot(Firmware::Bios, Media::Disk, &hybrid, "isolinux", tmp.path());
}

/// OVMF boots grub from the EFI image rootforge builds natively as FAT
/// (El Torito's EFI entry on a CD); grub reads the kernel and the initrd
/// from the ISO9660 tree.
#[test]
fn grub_efi_iso_boots_a_debian_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let efi = grub_efi_dir(tmp.path());
    let dir = tmp.path().join("files");
    add_kernel_and_initrd(&dir, tmp.path());
    let cd = iso(
        tmp.path(),
        "cd",
        &[
            "--overlay",
            &overlay(&dir),
            "--iso-efi-dir",
            efi.to_str().unwrap(),
        ],
    );
    boot(Firmware::Uefi, Media::Cdrom, &cd, "grub", tmp.path());
}

/// One image with both loaders, as distributions ship them: two El Torito
/// entries, the isohybrid MBR and a GPT whose second entry is the EFI
/// image. It boots four ways; from a hard disk, OVMF can only have found
/// grub through the GPT's EFI system partition.
#[test]
fn hybrid_iso_boots_bios_and_uefi_from_cd_and_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let efi = grub_efi_dir(tmp.path());
    let dir = tmp.path().join("files");
    add_isolinux(&dir);
    add_kernel_and_initrd(&dir, tmp.path());
    let isohdpfx = host_file(ISOHDPFX, "isolinux");
    let image = iso(
        tmp.path(),
        "both",
        &[
            "--overlay",
            &overlay(&dir),
            "--iso-boot-bios",
            "isolinux/isolinux.bin",
            "--iso-efi-dir",
            efi.to_str().unwrap(),
            "--iso-hybrid",
            isohdpfx.to_str().unwrap(),
        ],
    );
    for media in [Media::Cdrom, Media::Disk] {
        boot(Firmware::Bios, media, &image, "isolinux", tmp.path());
        boot(Firmware::Uefi, media, &image, "grub", tmp.path());
    }
}
