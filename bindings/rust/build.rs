//! Builds alloy's core (the prefixed API) from the repository's C sources
//! with the system C compiler, into a static library Cargo links.
//!
//! The sources and flags are not listed here: they are read from the
//! repository's `sources.mk` (CORE_SRC and LIB_CFLAGS), the one build
//! description the Makefile also uses.  A tiny reader of `NAME := value`
//! lines (with `\` continuations and `$(NAME)` references) is enough for it;
//! the one `$(shell ...)`, VALGRIND_CFLAGS, is answered the same way here:
//! does the compiler find <valgrind/memcheck.h>?
//!
//! Environment: ALLOY_SRC_DIR (the alloy tree; default ../.. from this
//! crate), CC (default cc), AR (default ar), CFLAGS_EXTRA (appended).

use std::collections::HashMap;
use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn read_make_variables(path: &Path) -> HashMap<String, String> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {}", path.display(), e));
    let mut vars = HashMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        if let Some(stripped) = line.strip_suffix('\\') {
            logical.push_str(stripped);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        if let Some(at) = logical.find(":=") {
            let name = logical[..at].trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                vars.insert(name.to_string(), logical[at + 2..].trim().to_string());
            }
        }
        logical.clear();
    }
    vars
}

/// `$(NAME)` references replaced by their values, recursively.
fn expand(value: &str, vars: &HashMap<String, String>, depth: usize) -> String {
    assert!(depth < 16, "sources.mk: variables refer to each other in a loop");
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(')').expect("sources.mk: unclosed $(") + start;
        let name = &rest[start + 2..end];
        if let Some(v) = vars.get(name) {
            out.push_str(&expand(v, vars, depth + 1));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn compiler_finds(cc: &str, header: &str) -> bool {
    let child = Command::new(cc)
        .args(["-E", "-x", "c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => return false,
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "#include <{}>", header);
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = env::var_os("ALLOY_SRC_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join("../.."));
    let root = root.canonicalize().unwrap_or_else(|e| panic!("alloy sources at {}: {}", root.display(), e));
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let ar = env::var("AR").unwrap_or_else(|_| "ar".to_string());

    let mut vars = read_make_variables(&root.join("sources.mk"));
    let valgrind = if compiler_finds(&cc, "valgrind/memcheck.h") { "-DALLOY_VALGRIND" } else { "" };
    vars.insert("VALGRIND_CFLAGS".to_string(), valgrind.to_string());
    let sources: Vec<String> = expand(&vars["CORE_SRC"], &vars, 0).split_whitespace().map(String::from).collect();
    let mut flags: Vec<String> = expand(&vars["LIB_CFLAGS"], &vars, 0).split_whitespace().map(String::from).collect();
    if let Ok(extra) = env::var("CFLAGS_EXTRA") {
        flags.extend(extra.split_whitespace().map(String::from));
    }
    assert!(!sources.is_empty(), "sources.mk: CORE_SRC is empty");

    // All at once: the compiler runs in parallel, one process per file.
    let obj_dir = out.join("obj");
    fs::create_dir_all(&obj_dir).unwrap();
    let mut jobs = Vec::new();
    let mut objects = Vec::new();
    for src in &sources {
        let stem = Path::new(src).file_stem().unwrap().to_string_lossy().to_string();
        let obj = obj_dir.join(format!("{}.o", stem));
        let child = Command::new(&cc)
            .current_dir(&root) // the flags say -Iinclude
            .args(&flags)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(&obj)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the C compiler '{}': {}", cc, e));
        jobs.push((src.clone(), child));
        objects.push(obj);
    }
    for (src, child) in jobs {
        let result = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        for line in stderr.lines() {
            println!("cargo:warning={}: {}", src, line);
        }
        assert!(result.status.success(), "{} {}: compilation failed", cc, src);
    }
    let lib = out.join("liballoy_core.a");
    let _ = fs::remove_file(&lib);
    let status = Command::new(&ar).arg("rcs").arg(&lib).args(&objects).status().unwrap_or_else(|e| panic!("cannot run '{}': {}", ar, e));
    assert!(status.success(), "{} rcs failed", ar);

    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=alloy_core");
    println!("cargo:rustc-link-lib=pthread");
    println!("cargo:rerun-if-changed={}", root.join("sources.mk").display());
    println!("cargo:rerun-if-changed={}", root.join("src").display());
    println!("cargo:rerun-if-changed={}", root.join("include").display());
    println!("cargo:rerun-if-env-changed=ALLOY_SRC_DIR");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=CFLAGS_EXTRA");
}
