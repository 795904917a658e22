//! `systemctl preset-all`: enablement symlinks in `/etc/systemd/system` from
//! the preset policy and the units' `[Install]` sections.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rootforge_common::{Content, Inode, Meta, Replace, Time, display_path};

use super::{SystemdError, config_files, dir_entries, fnmatch, join_rel};
use crate::tables::{Origin, TableError, Target, resolve};

const PRESET_DIRS: [&[u8]; 4] = [
    b"etc/systemd/system-preset",
    b"run/systemd/system-preset",
    b"usr/local/lib/systemd/system-preset",
    b"usr/lib/systemd/system-preset",
];

/// The system unit search path, most important first.
const UNIT_DIRS: [&[u8]; 4] = [
    b"etc/systemd/system",
    b"run/systemd/system",
    b"usr/local/lib/systemd/system",
    b"usr/lib/systemd/system",
];

/// Where enablement symlinks go.
const CONFIG: &[u8] = b"etc/systemd/system";

const UNIT_SUFFIXES: [&str; 11] = [
    ".service",
    ".socket",
    ".target",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".timer",
    ".path",
    ".slice",
    ".scope",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verb {
    /// With the instances to enable, for a template.
    Enable(Vec<String>),
    Disable,
    Ignore,
}

#[derive(Debug)]
struct Rule {
    pattern: String,
    verb: Verb,
}

/// One `[Install]` value, with the line it came from.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    origin: Origin,
}

#[derive(Debug, Default)]
struct Install {
    wanted_by: Vec<Value>,
    required_by: Vec<Value>,
    upheld_by: Vec<Value>,
    alias: Vec<Value>,
    also: Vec<Value>,
    default_instance: Option<Value>,
}

impl Install {
    fn is_empty(&self) -> bool {
        self.wanted_by.is_empty()
            && self.required_by.is_empty()
            && self.upheld_by.is_empty()
            && self.alias.is_empty()
            && self.also.is_empty()
    }
}

#[derive(Debug)]
struct Unit {
    /// Tree path of the unit file.
    path: Vec<u8>,
    install: Install,
}

/// What `systemctl --root=<tree> preset-all` does: for every unit file with
/// an `[Install]` section, the first matching preset line decides (no match
/// means enable). Disabled units first lose the symlinks to them under
/// `/etc/systemd/system` (as `systemctl disable` removes them), then enabled
/// ones get theirs: `WantedBy=`, `RequiredBy=` and `UpheldBy=` links in
/// `<target>.wants/`, `.requires/`, `.upholds/`, `Alias=` links, and `Also=`
/// units enabled with them. A template is enabled for the instances its
/// preset line lists, else its `DefaultInstance=`, else not at all. New
/// links and directories get `mtime`.
pub fn preset_all<T: Target + ?Sized>(t: &mut T, mtime: Time) -> Result<(), SystemdError> {
    let rules = load_rules(t)?;
    let units = load_units(t)?;
    let mut enable: Vec<(&str, Vec<String>)> = Vec::new();
    let mut disable: BTreeSet<String> = BTreeSet::new();
    for (name, unit) in &units {
        if unit.install.is_empty() {
            continue;
        }
        match query(&rules, name) {
            Verb::Enable(instances) => enable.push((name, instances)),
            Verb::Disable => {
                collect_also(&units, name, &mut disable)?;
            }
            Verb::Ignore => {}
        }
    }
    let mut marks: BTreeSet<String> = BTreeSet::new();
    for name in &disable {
        marks.insert(name.clone());
        if let Some(u) = units.get(name) {
            marks.insert(absolute(&u.path));
        }
    }
    if !marks.is_empty() {
        remove_marked(t, &mut marks)?;
    }
    let mut done = BTreeSet::new();
    for (name, instances) in enable {
        enable_unit(t, &units, name, &instances, mtime, &mut done)?;
    }
    Ok(())
}

fn load_rules<T: Target + ?Sized>(t: &mut T) -> Result<Vec<Rule>, SystemdError> {
    let mut rules = Vec::new();
    for file in config_files(t, &PRESET_DIRS, b".preset")? {
        let text = String::from_utf8_lossy(&file.text);
        for (i, line) in text.lines().enumerate() {
            let origin = Origin {
                file: file.path.clone(),
                line: i + 1,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(verb), Some(pattern)) = (words.next(), words.next()) else {
                return Err(origin
                    .err(format!("cannot parse preset line '{line}'"))
                    .into());
            };
            let rest: Vec<String> = words.map(str::to_owned).collect();
            let verb = match verb {
                "enable" => Verb::Enable(rest),
                "disable" if rest.is_empty() => Verb::Disable,
                "ignore" if rest.is_empty() => Verb::Ignore,
                _ => {
                    return Err(origin
                        .err(format!(
                            "cannot parse preset line '{line}' (enable, disable or ignore and a pattern)"
                        ))
                        .into());
                }
            };
            rules.push(Rule {
                pattern: pattern.to_owned(),
                verb,
            });
        }
    }
    Ok(rules)
}

/// The first rule for `name` (a template only matches rules that list
/// instances if it is one); none means enable.
fn query(rules: &[Rule], name: &str) -> Verb {
    let template = is_template(name);
    for rule in rules {
        if !fnmatch(rule.pattern.as_bytes(), name.as_bytes()) {
            continue;
        }
        if let Verb::Enable(instances) = &rule.verb
            && !instances.is_empty()
            && !template
        {
            continue;
        }
        return rule.verb.clone();
    }
    Verb::Enable(Vec::new())
}

/// The unit files by name: the first directory of the search path holding a
/// name wins; symlinks there (aliases, masks, links) are not presettable.
fn load_units<T: Target + ?Sized>(t: &mut T) -> Result<BTreeMap<String, Unit>, SystemdError> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut units = BTreeMap::new();
    for dir in UNIT_DIRS {
        for (raw, id) in dir_entries(t, dir) {
            let Ok(name) = String::from_utf8(raw) else {
                continue;
            };
            if !valid_unit_name(&name) || !seen.insert(name.clone()) {
                continue;
            }
            let Content::File(data) = &t.node(id).content else {
                continue;
            };
            let path = join_rel(dir, name.as_bytes());
            let text = data
                .to_vec()
                .map_err(|e| SystemdError::tree(&path, format!("cannot be read: {e}")))?;
            let file: Arc<str> = display_path(&path).into();
            let install = parse_install(&String::from_utf8_lossy(&text), &file)?;
            units.insert(name, Unit { path, install });
        }
    }
    Ok(units)
}

fn parse_install(text: &str, file: &Arc<str>) -> Result<Install, TableError> {
    let mut install = Install::default();
    let mut in_install = false;
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = i + 1;
        }
        // A trailing backslash continues the line.
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let origin = Origin {
            file: file.clone(),
            line: start,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(origin.err(format!("'{line}' is not a key=value assignment")));
        };
        let list = match key.trim() {
            "WantedBy" => &mut install.wanted_by,
            "RequiredBy" => &mut install.required_by,
            "UpheldBy" => &mut install.upheld_by,
            "Alias" => &mut install.alias,
            "Also" => &mut install.also,
            "DefaultInstance" => {
                let v = value.trim();
                install.default_instance = (!v.is_empty()).then(|| Value {
                    text: v.to_owned(),
                    origin,
                });
                continue;
            }
            _ => continue,
        };
        let value = value.trim();
        if value.is_empty() {
            list.clear();
        }
        list.extend(value.split_whitespace().map(|w| Value {
            text: w.trim_matches(['"', '\'']).to_owned(),
            origin: origin.clone(),
        }));
    }
    Ok(install)
}

/// `name` and, through `Also=`, the units it brings along.
fn collect_also(
    units: &BTreeMap<String, Unit>,
    name: &str,
    into: &mut BTreeSet<String>,
) -> Result<(), SystemdError> {
    if !into.insert(name.to_owned()) {
        return Ok(());
    }
    if let Some(u) = units.get(name) {
        for also in &u.install.also {
            let other = expand(&also.text, name).map_err(|e| also.origin.err(e))?;
            collect_also(units, &other, into)?;
        }
    }
    Ok(())
}

/// Removes, under `/etc/systemd/system`, every symlink whose name, template
/// name, destination or destination's file name is marked, marking each
/// removed link's own path in turn (links to links), until nothing changes.
/// Directories left empty by a removal go too, as systemctl's
/// `rmdir_parents` does.
fn remove_marked<T: Target + ?Sized>(
    t: &mut T,
    marks: &mut BTreeSet<String>,
) -> Result<(), SystemdError> {
    loop {
        let mut removed = Vec::new();
        for path in crate::tables::devices::subtree(t, CONFIG.to_vec()) {
            let Some(id) = t.lookup(&path) else {
                continue;
            };
            let Content::Symlink(target) = &t.node(id).content else {
                continue;
            };
            let target = target.clone();
            let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            if !valid_unit_name(&name) {
                continue;
            }
            // Chased inside the tree; a dangling chain ends at its first target.
            let dest = match resolve(t, &path, true, None) {
                Ok(Some(r)) => absolute(&r.path),
                _ => link_destination(&path, &target),
            };
            let dest_name = dest.rsplit('/').next().unwrap_or_default();
            let found = marks.contains(&name)
                || template_of(&name).is_some_and(|tpl| marks.contains(&tpl))
                || marks.contains(&dest)
                || marks.contains(dest_name);
            if found {
                removed.push(path);
            }
        }
        if removed.is_empty() {
            return Ok(());
        }
        for path in removed {
            t.remove(&path)?;
            marks.insert(absolute(&path));
            let mut dir = path.as_slice();
            while let Some(i) = dir.iter().rposition(|&b| b == b'/') {
                dir = &dir[..i];
                let empty = t
                    .lookup(dir)
                    .and_then(|id| t.node(id).children().map(|c| c.is_empty()))
                    .unwrap_or(false);
                if dir == CONFIG || !empty {
                    break;
                }
                t.remove(dir)?;
            }
        }
    }
}

/// A symlink's target as an absolute, `.`/`..`-free path.
fn link_destination(link: &[u8], target: &[u8]) -> String {
    let mut parts: Vec<&[u8]> = Vec::new();
    if target.first() != Some(&b'/') {
        parts.extend(link.split(|&b| b == b'/').filter(|c| !c.is_empty()));
        parts.pop();
    }
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    absolute(&parts.join(&b'/'))
}

fn absolute(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

fn enable_unit<T: Target + ?Sized>(
    t: &mut T,
    units: &BTreeMap<String, Unit>,
    name: &str,
    instances: &[String],
    mtime: Time,
    done: &mut BTreeSet<String>,
) -> Result<(), SystemdError> {
    if !done.insert(name.to_owned()) {
        return Ok(());
    }
    let unit = units.get(name).ok_or_else(|| SystemdError::Tree {
        path: display_path(CONFIG),
        reason: format!("unit {name} (named by Also=) does not exist"),
    })?;
    let install = &unit.install;
    let target = absolute(&unit.path);
    // A template without an instance only goes into other templates' lists.
    let names: Vec<String> = if is_template(name) {
        let list: Vec<&str> = if instances.is_empty() {
            install
                .default_instance
                .iter()
                .map(|v| v.text.as_str())
                .collect()
        } else {
            instances.iter().map(String::as_str).collect()
        };
        if list.is_empty() {
            vec![name.to_owned()]
        } else {
            list.iter().filter_map(|i| with_instance(name, i)).collect()
        }
    } else {
        vec![name.to_owned()]
    };
    for n in &names {
        let template = is_template(n);
        for alias in &install.alias {
            let a = expand(&alias.text, n).map_err(|e| alias.origin.err(e))?;
            check_unit_name(&a, alias)?;
            if is_template(&a) == template {
                link(t, a.as_bytes(), &target, mtime)?;
            }
        }
        for (list, dir_suffix) in [
            (&install.wanted_by, ".wants"),
            (&install.required_by, ".requires"),
            (&install.upheld_by, ".upholds"),
        ] {
            for by in list {
                let mut by_name = expand(&by.text, n).map_err(|e| by.origin.err(e))?;
                check_unit_name(&by_name, by)?;
                match (template, is_template(&by_name)) {
                    (true, false) => continue,
                    (false, true) => {
                        if let Some(inst) = instance_of(n).and_then(|i| with_instance(&by_name, i))
                        {
                            by_name = inst;
                        }
                    }
                    _ => {}
                }
                let rel = format!("{by_name}{dir_suffix}/{n}");
                link(t, rel.as_bytes(), &target, mtime)?;
            }
        }
    }
    for also in &install.also {
        let other = expand(&also.text, name).map_err(|e| also.origin.err(e))?;
        if !units.contains_key(&other) {
            return Err(also
                .origin
                .err(format!("Also= names {other}, which has no unit file"))
                .into());
        }
        enable_unit(t, units, &other, &[], mtime, done)?;
    }
    Ok(())
}

fn check_unit_name(name: &str, value: &Value) -> Result<(), TableError> {
    if valid_unit_name(name) {
        Ok(())
    } else {
        Err(value
            .origin
            .err(format!("'{name}' is not a valid unit name")))
    }
}

/// Creates `/etc/systemd/system/<rel>` → `target` unless that link exists;
/// anything else already there is a conflict, as for systemctl.
fn link<T: Target + ?Sized>(
    t: &mut T,
    rel: &[u8],
    target: &str,
    mtime: Time,
) -> Result<(), SystemdError> {
    let path = join_rel(CONFIG, rel);
    let parent = path
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(&[][..], |i| &path[..i]);
    resolve(t, parent, true, Some(Meta::new(0o755, 0, 0, mtime)))
        .map_err(|e| SystemdError::tree(parent, e))?;
    if let Some(id) = t.lookup(&path) {
        return match &t.node(id).content {
            Content::Symlink(old) if **old == *target.as_bytes() => Ok(()),
            Content::Symlink(old) => Err(SystemdError::tree(
                &path,
                format!(
                    "already links to {}, not {target}",
                    String::from_utf8_lossy(old)
                ),
            )),
            _ => Err(SystemdError::tree(
                &path,
                format!(
                    "is a {}, where a symlink to {target} should go",
                    t.node(id).kind().name()
                ),
            )),
        };
    }
    let inode = Inode::new(
        Meta::new(0o777, 0, 0, mtime),
        Content::Symlink(target.as_bytes().into()),
    );
    t.insert(&path, inode, Replace::Always)?;
    Ok(())
}

fn split_suffix(name: &str) -> Option<(&str, &str)> {
    let dot = name.rfind('.')?;
    let suffix = &name[dot..];
    UNIT_SUFFIXES
        .contains(&suffix)
        .then_some((&name[..dot], suffix))
}

fn valid_unit_name(name: &str) -> bool {
    let Some((stem, _)) = split_suffix(name) else {
        return false;
    };
    !stem.is_empty()
        && name.len() <= 255
        && stem.matches('@').count() <= 1
        && !stem.starts_with('@')
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

fn is_template(name: &str) -> bool {
    split_suffix(name).is_some_and(|(stem, _)| stem.ends_with('@'))
}

/// `foo@bar.service` → `foo@.service`.
fn template_of(name: &str) -> Option<String> {
    let (stem, suffix) = split_suffix(name)?;
    let (prefix, instance) = stem.split_once('@')?;
    (!instance.is_empty()).then(|| format!("{prefix}@{suffix}"))
}

/// `foo@bar.service` → `bar`.
fn instance_of(name: &str) -> Option<&str> {
    let (stem, _) = split_suffix(name)?;
    stem.split_once('@')
        .map(|(_, i)| i)
        .filter(|i| !i.is_empty())
}

/// `foo@.service` with `bar` → `foo@bar.service`.
fn with_instance(template: &str, instance: &str) -> Option<String> {
    let (stem, suffix) = split_suffix(template)?;
    Some(format!("{stem}{instance}{suffix}"))
}

/// Expands the unit-name specifiers of an `[Install]` value for unit
/// `name`; the ones about the host (`%H`, `%m`, ...) are refused.
fn expand(value: &str, name: &str) -> Result<String, String> {
    let (stem, _) = split_suffix(name).ok_or_else(|| format!("bad unit name {name}"))?;
    let (prefix, instance) = stem.split_once('@').unwrap_or((stem, ""));
    let last = prefix.rsplit('-').next().unwrap_or(prefix);
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(name),
            Some('N') => out.push_str(stem),
            Some('p') => out.push_str(prefix),
            Some('P') => out.push_str(&unescape_unit(prefix)),
            Some('i') => out.push_str(instance),
            Some('I') => out.push_str(&unescape_unit(instance)),
            Some('j') => out.push_str(last),
            Some('J') => out.push_str(&unescape_unit(last)),
            Some(o) => {
                return Err(format!(
                    "specifier %{o} in '{value}' is not supported (only the unit name ones)"
                ));
            }
            None => return Err(format!("a lone % at the end of '{value}'")),
        }
    }
    Ok(out)
}

/// systemd's unit name unescaping: `-` is `/`, `\xNN` a byte.
fn unescape_unit(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(if b[i] == b'-' { b'/' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
