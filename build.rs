//! Build script: compiles the C shim (`pyshim/capi/`) against the headers of the Python that
//! pyo3 builds for, internal headers included, tells rustc which CPython version that is, and
//! generates the opcode table (`$OUT_DIR/opcodes.rs`) from the target interpreter's `opcode`
//! module, so opcode numbers always come from the version being built for.
//!
//! Include directories come from `RJIT_PYTHON_INCLUDE` (a `:`-separated list, for cross builds
//! where the target's headers live in a sysroot) or else from the target interpreter's
//! `sysconfig.get_paths()["include"]`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let config = pyo3_build_config::get();
    let version = config.version();

    // The interpreter-version cfgs (Py_3_11, Py_3_12, ...) used by src/cpython/ for the few
    // places where the Rust side has to know the version.
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo::rustc-check-cfg=cfg(Py_3_7,Py_3_8,Py_3_9,Py_3_10,Py_3_11,Py_3_12,Py_3_13,Py_3_14,Py_3_15,Py_GIL_DISABLED,Py_LIMITED_API,PyPy,GraalPy)");

    if (version.major, version.minor) != (3, 11) {
        // Versions other than 3.11 need their own shim parts (see DESIGN.md section 4); fail
        // at build time with a clear message rather than at import with a missing symbol.
        panic!(
            "rjit supports CPython 3.11 for now; the target interpreter is {}.{}",
            version.major, version.minor
        );
    }

    let include_dirs = include_dirs(config.executable());
    let mut build = cc::Build::new();
    build
        .file("pyshim/capi/shim.c")
        .file("pyshim/capi/jitfunction.c")
        .define("Py_BUILD_CORE", "1")
        // Hidden visibility: the shim's symbols are private to the extension module.
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true);
    for dir in &include_dirs {
        build.include(dir);
    }
    build.compile("rjit_shim");

    write_opcode_table(config.executable(), (version.major, version.minor));

    println!("cargo::rerun-if-changed=pyshim/capi");
    println!("cargo::rerun-if-env-changed=RJIT_PYTHON_INCLUDE");
    println!("cargo::rerun-if-env-changed=RJIT_OPCODE_PYTHON");
    println!("cargo::rerun-if-env-changed=PYO3_PYTHON");
}

/// The target interpreter's command: pyo3's, else `PYO3_PYTHON`, else `python3`.
fn target_python(executable: Option<&str>) -> String {
    executable.map(str::to_owned).or_else(|| env::var("PYO3_PYTHON").ok()).unwrap_or_else(|| "python3".to_owned())
}

/// The directories holding `Python.h` (and `internal/`) for the target interpreter.
fn include_dirs(executable: Option<&str>) -> Vec<PathBuf> {
    if let Ok(list) = env::var("RJIT_PYTHON_INCLUDE") {
        let dirs: Vec<PathBuf> = env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
        if !dirs.is_empty() {
            return dirs;
        }
    }
    let python = target_python(executable);
    let output = Command::new(&python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['include'])"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} to find the Python headers: {e}"));
    assert!(
        output.status.success(),
        "{python} failed to report its include directory: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        dir.join("internal").join("pycore_frame.h").exists(),
        "{} has no internal headers (internal/pycore_frame.h); set RJIT_PYTHON_INCLUDE",
        dir.display()
    );
    vec![dir]
}

// ---------------------------------------------------------------------------------------------
// The opcode table (src/bytecode includes it as `bytecode::op`).
//
// Opcode numbers, cache sizes and the has* groups differ between CPython versions (3.12
// renumbered most opcodes, 3.13 again), so they are read from the interpreter rjit is built for,
// never hard-coded. A cross build sets `RJIT_OPCODE_PYTHON` to a host Python of the target's
// major.minor: the table depends only on the version, not on the platform.

/// Prints the `opcode` module's data, one fact per line, in a format `parse_opcode_facts` reads
/// without a JSON parser (build.rs has no serde). Runs on 3.11 and later.
const OPCODE_SCRIPT: &str = r#"
import dis, opcode, sys
print("version", *sys.version_info[:2])
print("have_argument", opcode.HAVE_ARGUMENT)
# Inline cache sizes: a list indexed by opcode on 3.11 and 3.12; a dict keyed by name on 3.13,
# where the list moved to _opcode_metadata. Missing means no caches (3.10 and earlier).
caches = getattr(opcode, "_inline_cache_entries", None)
if caches is None:
    caches = getattr(dis, "_inline_cache_entries", None)
def cache_size(op, name):
    if isinstance(caches, dict):
        return caches.get(name, 0)
    if caches is not None and op < len(caches):
        return caches[op]
    return 0
groups = ("hasjrel", "hasjabs", "hasconst", "hasname", "haslocal", "hasfree")
members = {g: set(getattr(opcode, g, ())) for g in groups}
for name, op in sorted(opcode.opmap.items(), key=lambda item: item[1]):
    if op > 255:
        continue  # 3.12+ pseudo-ops (SETUP_FINALLY, JUMP, ...) exist only inside the compiler
    flags = ",".join(g for g in groups if op in members[g]) or "-"
    print("op", op, name, cache_size(op, name), flags)
# Specialised (adaptive) instructions: numbered by dis._all_opmap on 3.11/3.12 (CPython fills
# the unused slots with them) and by opcode._specialized_opmap on 3.13.
numbers = dict(getattr(dis, "_all_opmap", {}))
numbers.update(getattr(opcode, "_specialized_opmap", {}))
for base, family in getattr(opcode, "_specializations", {}).items():
    for name in family:
        if name in numbers and name not in opcode.opmap and numbers[name] < 256:
            print("specialized", numbers[name], name, base)
"#;

/// Unconditional jumps, by name; a name the version lacks is skipped. Mirrors
/// `IS_UNCONDITIONAL_JUMP_OPCODE` in CPython's `pycore_opcode_utils.h` (3.12) / `opcode.h` (3.11).
const UNCONDITIONAL_JUMPS: &[&str] = &["JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE"];

/// Instructions after which execution never falls through to the next one, besides the
/// unconditional jumps: mirrors `IS_SCOPE_EXIT_OPCODE` (`RETURN_VALUE`, `RETURN_CONST`,
/// `RAISE_VARARGS`, `RERAISE`).
const SCOPE_EXITS: &[&str] = &["RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE"];

/// One opcode of the running version.
struct OpcodeFact {
    number: u8,
    name: String,
    caches: u8,
    groups: Vec<String>,
}

/// What the `opcode` module says about the version.
struct OpcodeFacts {
    version: (u8, u8),
    have_argument: u8,
    ops: Vec<OpcodeFact>,
    /// (number, name, base name) of each specialised instruction.
    specialized: Vec<(u8, String, String)>,
}

/// Runs the interpreter's `opcode` module and writes `$OUT_DIR/opcodes.rs`.
fn write_opcode_table(executable: Option<&str>, version: (u8, u8)) {
    let python = env::var("RJIT_OPCODE_PYTHON").unwrap_or_else(|_| target_python(executable));
    let output = Command::new(&python)
        .args(["-c", OPCODE_SCRIPT])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} to read its opcode table: {e}"));
    assert!(
        output.status.success(),
        "{python} failed to print its opcode table: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let facts = parse_opcode_facts(&String::from_utf8_lossy(&output.stdout));
    assert!(
        facts.version == version,
        "{python} is CPython {}.{} but pyo3 builds for {}.{}; opcode tables differ between \
         versions (set RJIT_OPCODE_PYTHON to a Python {}.{})",
        facts.version.0,
        facts.version.1,
        version.0,
        version.1,
        version.0,
        version.1
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("opcodes.rs");
    std::fs::write(&out, render_opcode_table(&facts, &python))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// Parses `OPCODE_SCRIPT`'s output.
fn parse_opcode_facts(text: &str) -> OpcodeFacts {
    let mut facts = OpcodeFacts { version: (0, 0), have_argument: 0, ops: Vec::new(), specialized: Vec::new() };
    let number = |field: Option<&str>, line: &str| -> u8 {
        field.and_then(|f| f.parse().ok()).unwrap_or_else(|| panic!("bad line from the opcode script: {line:?}"))
    };
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("version") => facts.version = (number(fields.next(), line), number(fields.next(), line)),
            Some("have_argument") => facts.have_argument = number(fields.next(), line),
            Some("op") => {
                let op_number = number(fields.next(), line);
                let name = fields.next().unwrap_or_else(|| panic!("bad line: {line:?}")).to_owned();
                let caches = number(fields.next(), line);
                let groups = fields.next().unwrap_or("-").split(',').filter(|g| *g != "-").map(str::to_owned);
                facts.ops.push(OpcodeFact { number: op_number, name, caches, groups: groups.collect() });
            }
            Some("specialized") => {
                let op_number = number(fields.next(), line);
                let name = fields.next().unwrap_or_else(|| panic!("bad line: {line:?}")).to_owned();
                let base = fields.next().unwrap_or_else(|| panic!("bad line: {line:?}")).to_owned();
                facts.specialized.push((op_number, name, base));
            }
            _ => panic!("unexpected line from the opcode script: {line:?}"),
        }
    }
    assert!(facts.version != (0, 0) && !facts.ops.is_empty(), "the opcode script printed no table");
    facts
}

/// The text of `opcodes.rs`.
fn render_opcode_table(facts: &OpcodeFacts, python: &str) -> String {
    let mut out = String::new();
    render_consts(&mut out, facts, python);
    render_tables(&mut out, facts);
    render_specialized(&mut out, facts);
    out
}

/// The header, the version, `HAVE_ARGUMENT` and one const per opcode.
fn render_consts(out: &mut String, facts: &OpcodeFacts, python: &str) {
    use std::fmt::Write;
    let (major, minor) = facts.version;
    let _ = writeln!(out, "// @generated by build.rs from the `opcode` module of CPython {major}.{minor} ({python}).");
    let _ = writeln!(out, "// Do not edit: rebuild with another interpreter to get its table.\n");
    let _ = writeln!(out, "/// The CPython version (major, minor) this table was read from.");
    let _ = writeln!(out, "pub const PYTHON_VERSION: (u8, u8) = ({major}, {minor});\n");
    let _ = writeln!(out, "/// Opcodes below this take no argument (`opcode.HAVE_ARGUMENT`).");
    let _ = writeln!(out, "pub const HAVE_ARGUMENT: u8 = {};\n", facts.have_argument);
    for op in &facts.ops {
        let _ = writeln!(out, "/// `{}` ({}).\npub const {}: u8 = {};", op.name, op.number, op.name, op.number);
    }
}

/// The per-opcode tables: names, cache sizes, the has* groups, jump kinds.
fn render_tables(out: &mut String, facts: &OpcodeFacts) {
    let mut names = vec![String::new(); 256];
    let mut caches = vec![String::from("0"); 256];
    for op in &facts.ops {
        names[usize::from(op.number)] = op.name.clone();
        caches[usize::from(op.number)] = op.caches.to_string();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    write_array(out, "The name of each opcode (`opcode.opmap`); empty where unused.", "NAMES", "&str", &quoted);
    write_array(out, "Inline CACHE units after each opcode (`_inline_cache_entries`).", "CACHE_ENTRIES", "u8", &caches);
    for (rust_name, group, doc) in [
        ("HAS_JREL", "hasjrel", "Relative jumps (`opcode.hasjrel`)."),
        ("HAS_JABS", "hasjabs", "Absolute jumps (`opcode.hasjabs`; none since 3.11)."),
        ("HAS_CONST", "hasconst", "Opcodes whose argument indexes `co_consts` (`opcode.hasconst`)."),
        ("HAS_NAME", "hasname", "Opcodes whose argument indexes `co_names` (`opcode.hasname`)."),
        ("HAS_LOCAL", "haslocal", "Opcodes whose argument is a fast local (`opcode.haslocal`)."),
        ("HAS_FREE", "hasfree", "Opcodes whose argument is a cell or free variable (`opcode.hasfree`)."),
    ] {
        let members = facts.ops.iter().filter(|op| op.groups.iter().any(|g| g == group));
        let mut flags = vec![false; 256];
        members.for_each(|op| flags[usize::from(op.number)] = true);
        write_bools(out, doc, rust_name, &flags);
    }
    let backward: Vec<bool> = names.iter().map(|n| n.contains("JUMP_BACKWARD")).collect();
    let doc = "Relative jumps that go backwards (as `dis._is_backward_jump`: the name has `JUMP_BACKWARD`).";
    write_bools(out, doc, "BACKWARD_JUMP", &backward);
    let ends = |n: &String| UNCONDITIONAL_JUMPS.contains(&n.as_str()) || SCOPE_EXITS.contains(&n.as_str());
    let no_fallthrough: Vec<bool> = names.iter().map(ends).collect();
    let doc = "Instructions never followed by the next one: unconditional jumps, returns, raises.";
    write_bools(out, doc, "NO_FALLTHROUGH", &no_fallthrough);
}

/// The specialised instructions: their consts (in `specialized`), names and base opcodes.
fn render_specialized(out: &mut String, facts: &OpcodeFacts) {
    use std::fmt::Write;
    let _ = writeln!(out, "/// CPython's specialised (adaptive) instructions, which appear only in the quickened code");
    let _ = writeln!(out, "/// (`_co_code_adaptive`), never in `co_code`.");
    let _ = writeln!(out, "pub mod specialized {{");
    for (number, name, base) in &facts.specialized {
        let _ = writeln!(out, "    /// `{name}` ({number}), a form of `{base}`.\n    pub const {name}: u8 = {number};");
    }
    let _ = writeln!(out, "}}\n");
    let mut names = vec![String::new(); 256];
    let mut deopt: Vec<u8> = (0..=255).collect();
    for (number, name, base) in &facts.specialized {
        names[usize::from(*number)] = name.clone();
        if let Some(op) = facts.ops.iter().find(|op| op.name == *base) {
            deopt[usize::from(*number)] = op.number;
        }
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let doc = "The name of each specialised instruction; empty elsewhere.";
    write_array(out, doc, "SPECIALIZED_NAMES", "&str", &quoted);
    let deopt_text: Vec<String> = deopt.iter().map(u8::to_string).collect();
    let doc = "The base opcode of each specialised instruction (CPython's `_PyOpcode_Deopt`); other\n\
               /// numbers map to themselves.";
    write_array(out, doc, "DEOPT", "u8", &deopt_text);
}

/// Writes `pub static NAME: [TY; 256] = [...];` eight items a line.
fn write_array(out: &mut String, doc: &str, name: &str, ty: &str, items: &[String]) {
    use std::fmt::Write;
    let _ = writeln!(out, "\n/// {doc}\npub static {name}: [{ty}; 256] = [");
    for row in items.chunks(8) {
        let _ = writeln!(out, "    {},", row.join(", "));
    }
    let _ = writeln!(out, "];");
}

/// Writes a `[bool; 256]` table.
fn write_bools(out: &mut String, doc: &str, name: &str, items: &[bool]) {
    let text: Vec<String> = items.iter().map(bool::to_string).collect();
    write_array(out, doc, name, "bool", &text);
}
