//! Link options for the daemon on x86-64 Linux, where rustc links with lld (see
//! `daemon/layout/cc` and `daemon/layout/env.sh`).

fn main() {
    println!("cargo:rerun-if-changed=layout/startup.names");
    println!("cargo:rerun-if-changed=layout/cc");
    println!("cargo::rustc-check-cfg=cfg(voipd_layout)");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let x86_64_gnu = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if !x86_64_gnu {
        return;
    }
    // OpenH264's C++ library, linked statically (see .cargo/config.toml).
    println!("cargo:rustc-link-lib=static:-bundle=stdc++");
    if var("PROFILE") != "release" {
        return;
    }
    // Relative relocations packed (DT_RELR, glibc 2.36 and later): 31,000 of them took
    // 0.75 MB of the binary, which the loader read at every start.
    println!("cargo:rustc-link-arg-bin=voipd=-Wl,-z,pack-relative-relocs");
    // The start-up layout, when the link goes through the wrapper (daemon/layout/env.sh
    // makes it the linker; a plain `cargo build` links without it).
    if !var("RUSTC_LINKER").ends_with("/voipd-layout-cc") {
        return;
    }
    let names = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("layout/startup.names");
    // Copied into OUT_DIR, which every clone sharing the target dir shares: this script
    // runs again only when the list changes, and the clone it last ran in (whose path an
    // argument naming the list in place would carry) may be gone by then.
    let copy = std::path::Path::new(&var("OUT_DIR")).join("startup.names");
    if let Err(e) = std::fs::copy(&names, &copy) {
        println!("cargo:warning=no start-up layout: {}: {e}", names.display());
        return;
    }
    // What start-up and an idle daemon run, laid out together at the start of the code by
    // the linker wrapper, which takes this argument for its own.
    println!(
        "cargo:rustc-link-arg-bin=voipd=-Wl,--symbol-ordering-file={}",
        copy.display()
    );
    // The daemon gives back the start-up-only block the list ends with (memory.rs).
    println!("cargo:rustc-cfg=voipd_layout");
}
