//! The "constrained" budget: a Raspberry-Pi-class share of the machine for the broker
//! under test — half of one core and 64 MiB — set through the kernel's cgroup files
//! (v2 when mounted, else the v1 `cpu` and `memory` controllers). Needs root.

use std::fs;
use std::path::{Path, PathBuf};

/// CPU time per period (50 % of one core) and the memory ceiling.
const QUOTA_US: u64 = 50_000;
const PERIOD_US: u64 = 100_000;
pub const MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const NAME: &str = "outpost-bench";

/// Human summary for the report's parameters.
pub fn describe() -> String {
    format!(
        "{}% of one core, {} MiB",
        QUOTA_US * 100 / PERIOD_US,
        MEMORY_BYTES >> 20
    )
}

/// Moves process `pid` into the constrained group, creating and configuring it first.
pub fn confine(pid: u32) -> Result<(), String> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(NAME);
        ensure(&dir)?;
        // The parent must hand the controllers down.
        let _ = fs::write(root.join("cgroup.subtree_control"), "+cpu +memory");
        write(&dir.join("cpu.max"), &format!("{QUOTA_US} {PERIOD_US}"))?;
        write(&dir.join("memory.max"), &MEMORY_BYTES.to_string())?;
        write(&dir.join("cgroup.procs"), &pid.to_string())
    } else {
        let cpu = root.join("cpu").join(NAME);
        let memory = root.join("memory").join(NAME);
        ensure(&cpu)?;
        ensure(&memory)?;
        write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
        write(&cpu.join("cpu.cfs_quota_us"), &QUOTA_US.to_string())?;
        write(
            &memory.join("memory.limit_in_bytes"),
            &MEMORY_BYTES.to_string(),
        )?;
        write(&cpu.join("cgroup.procs"), &pid.to_string())?;
        write(&memory.join("cgroup.procs"), &pid.to_string())
    }
}

fn ensure(dir: &PathBuf) -> Result<(), String> {
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir(dir).map_err(|e| {
        format!(
            "cannot create cgroup {} ({e}); the constrained cases need root and cgroups",
            dir.display()
        )
    })
}

fn write(file: &Path, value: &str) -> Result<(), String> {
    fs::write(file, value).map_err(|e| format!("cannot write {}: {e}", file.display()))
}
