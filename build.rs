//! Compiles warden's hook entry points (src/postgres/hooks.c) against the server headers of the
//! PostgreSQL that pgrx builds for (PGRX_PG_CONFIG_PATH, else PG_CONFIG, else Debian's 15).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/postgres/hooks.c");
    println!("cargo:rerun-if-env-changed=PGRX_PG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PG_CONFIG");
    let pg_config = std::env::var("PGRX_PG_CONFIG_PATH")
        .or_else(|_| std::env::var("PG_CONFIG"))
        .unwrap_or_else(|_| {
            let debian = "/usr/lib/postgresql/15/bin/pg_config";
            if std::path::Path::new(debian).exists() {
                debian.into()
            } else {
                "pg_config".into()
            }
        });
    let out = Command::new(&pg_config)
        .arg("--includedir-server")
        .output()
        .unwrap_or_else(|e| panic!("could not run {pg_config}: {e}"));
    assert!(
        out.status.success(),
        "{pg_config} --includedir-server failed"
    );
    let include = String::from_utf8(out.stdout).expect("pg_config printed UTF-8");
    cc::Build::new()
        .file("src/postgres/hooks.c")
        .include(include.trim())
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true)
        .compile("warden_hooks");
}
