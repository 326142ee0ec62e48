//! Links the `outpost` binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) on x86-64 and AArch64 Linux: about 100 KB of `.rela.dyn` becomes a few
//! hundred bytes (docs/performance.md, "Binary size").
//!
//! Only when the target's glibc can load such a binary (2.36 or newer: Debian 12, Ubuntu
//! 24.04, Raspberry Pi OS 12), told by its `libc.so.6` defining `GLIBC_ABI_DT_RELR`; built
//! against an older glibc the binary is linked as before and runs there. On x86-64 the
//! usual linker packs (GNU ld 2.38+, or the rust-lld rustc uses by default). On AArch64,
//! GNU ld 2.40 (Debian 12's, native or cross) ignores the option, so the binary is linked
//! with the LLVM linker rustup ships with rustc (`gcc-ld/ld.lld` in the toolchain's
//! sysroot); a toolchain without it (a distribution's rustc) links as before, unpacked.
//! 32-bit ARM (armhf) is linked as before: not tried with rust-lld yet.

use std::path::PathBuf;
use std::process::Command;

const PACK: &str = "cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(format!("CARGO_CFG_TARGET_{key}")).unwrap_or_default();
    if target("OS") != "linux" || target("ENV") != "gnu" || !glibc_loads_relr() {
        return;
    }
    match target("ARCH").as_str() {
        "x86_64" => println!("{PACK}"),
        "aarch64" => {
            if let Some(dir) = rust_lld_dir() {
                println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
                println!("cargo:rustc-link-arg-bins=-B{}", dir.display());
                println!("{PACK}");
            }
        }
        _ => {}
    }
}

/// Whether the glibc the binary is linked against (the one the linker driver, the target's
/// C compiler, finds) has the DT_RELR loader of glibc 2.36.
fn glibc_loads_relr() -> bool {
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(linker)
        .arg("-print-file-name=libc.so.6")
        .output()
    else {
        return false;
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let needle = b"GLIBC_ABI_DT_RELR";
    std::fs::read(path).is_ok_and(|libc| libc.windows(needle.len()).any(|w| w == needle))
}

/// The directory of rustup's `ld.lld` wrapper around rust-lld, where the C compiler that
/// drives the link finds it with `-fuse-ld=lld -B<dir>`; `None` when this toolchain has none.
fn rust_lld_dir() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").ok()?;
    let host = std::env::var("HOST").ok()?;
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = PathBuf::from(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/gcc-ld");
    dir.join("ld.lld").is_file().then_some(dir)
}
