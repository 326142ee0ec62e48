//! Links the `outpost` binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) on x86-64 and AArch64 Linux: about 100 KB of `.rela.dyn` becomes a few
//! hundred bytes (docs/performance.md, "Binary size"). It needs GNU ld 2.38 or newer to
//! link and glibc 2.36 or newer to run, which Debian 12, Ubuntu 24.04 and Raspberry Pi OS
//! 12 have; 32-bit ARM is left as it is (its linker has no RELR).

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && (arch == "x86_64" || arch == "aarch64") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
