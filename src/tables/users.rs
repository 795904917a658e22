//! The mkusers users table: `username uid group gid password home shell
//! groups comment` lines, edited into the tree's `/etc/passwd`, `/etc/group`,
//! `/etc/shadow` and (if present) `/etc/gshadow`.

use std::io::Read;
use std::path::Path;

use rootforge_common::{Kind, Meta, Time};
use sha2::{Digest, Sha512};

use super::{Origin, TableError, Target, read_file, resolve, write_file};

/// The password field of a users table line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// Written to `/etc/shadow` as is: `-` becomes the empty password, `*`,
    /// `!…` and already-crypted hashes are kept.
    Literal(String),
    /// `=clear` (or `!=clear` when `locked`): hashed with SHA-512 crypt.
    Clear { text: String, locked: bool },
}

/// One parsed users table line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLine {
    pub origin: Origin,
    /// `None` for `-`: only the group is created.
    pub name: Option<String>,
    /// A fixed id above 0, or -1 (automatic system id) or -2 (user id).
    pub uid: i64,
    pub group: String,
    pub gid: i64,
    pub password: Password,
    /// `None` for `-` (home `/`, nothing created).
    pub home: Option<String>,
    pub shell: String,
    pub groups: Vec<String>,
    pub comment: String,
}

/// How to apply a users table.
#[derive(Debug, Clone, Copy)]
pub struct UsersOptions {
    /// Set: password salts derive from it and the user name, so the image
    /// is reproducible. Unset: salts are random.
    pub source_date_epoch: Option<i64>,
    /// The mtime of home directories created.
    pub mtime: Time,
}

const SYSTEM_IDS: (u32, u32) = (100, 999);
const USER_IDS: (u32, u32) = (1000, 1999);

/// Parses a whole users table. `file` only names the table in errors.
pub fn parse_users_table(text: &str, file: &Path) -> Result<Vec<UserLine>, TableError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let origin = Origin::new(file, i + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains(':') {
            return Err(origin.err("no field may contain ':'"));
        }
        let mut rest = line;
        let mut next = |what: &str| {
            let r = rest.trim_start();
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            let (field, tail) = r.split_at(end);
            rest = tail;
            if field.is_empty() {
                Err(origin.err(format!("missing {what} field")))
            } else {
                Ok(field.to_owned())
            }
        };
        let name = next("username")?;
        let uid = next("uid")?;
        let group = next("group")?;
        let gid = next("gid")?;
        let password = next("password")?;
        let home = next("home")?;
        let shell = next("shell")?;
        let groups = next("groups")?;
        let comment = rest.trim().to_owned();
        let id = |v: &str, what: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|&n| n == -1 || n == -2 || (1..i64::from(u32::MAX)).contains(&n))
                .ok_or_else(|| origin.err(format!("bad {what} '{v}' (a number above 0, -1 or -2)")))
        };
        let name = (name != "-").then_some(name);
        if name.as_deref() == Some("root") {
            return Err(origin.err("the root user cannot be defined in a users table"));
        }
        let home = (home != "-").then_some(home);
        if let Some(h) = &home
            && (!h.starts_with('/') || h.trim_matches('/').is_empty())
        {
            return Err(origin.err(format!("home '{h}' must be an absolute path other than /")));
        }
        let password = match (password.strip_prefix("!="), password.strip_prefix('=')) {
            (Some(t), _) => Password::Clear {
                text: t.to_owned(),
                locked: true,
            },
            (None, Some(t)) => Password::Clear {
                text: t.to_owned(),
                locked: false,
            },
            _ if password == "-" => Password::Literal(String::new()),
            _ => Password::Literal(password),
        };
        out.push(UserLine {
            uid: id(&uid, "uid")?,
            gid: id(&gid, "gid")?,
            origin,
            name,
            group,
            password,
            home,
            shell: if shell == "-" {
                "/bin/false".into()
            } else {
                shell
            },
            groups: if groups == "-" {
                Vec::new()
            } else {
                groups
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            },
            comment,
        });
    }
    Ok(out)
}

/// One of the colon-separated databases, as lines of fields.
#[derive(Debug)]
struct Db {
    path: &'static [u8],
    lines: Vec<Vec<String>>,
}

impl Db {
    fn load<T: Target + ?Sized>(t: &mut T, path: &'static [u8]) -> Result<Option<Db>, String> {
        let Some(bytes) = read_file(t, path)? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("/{} is not UTF-8", String::from_utf8_lossy(path)))?;
        let lines = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(':').map(str::to_owned).collect())
            .collect();
        Ok(Some(Db { path, lines }))
    }

    fn find(&self, name: &str) -> Option<&Vec<String>> {
        self.lines.iter().find(|l| l[0] == name)
    }

    fn id_of(&self, name: &str) -> Option<u32> {
        self.find(name)?.get(2)?.parse().ok()
    }

    fn name_of(&self, id: u32) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.get(2).and_then(|v| v.parse().ok()) == Some(id))
            .map(|l| l[0].as_str())
    }

    /// Removes `name`'s line, returning it; the new one goes at the end.
    fn take(&mut self, name: &str) -> Option<Vec<String>> {
        let i = self.lines.iter().position(|l| l[0] == name)?;
        Some(self.lines.remove(i))
    }

    fn lowest_free(&self, (lo, hi): (u32, u32)) -> Option<u32> {
        (lo..=hi).find(|&id| self.name_of(id).is_none())
    }

    fn store<T: Target + ?Sized>(&self, t: &mut T) -> Result<(), String> {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(&l.join(":"));
            out.push('\n');
        }
        write_file(t, self.path, out.into_bytes())
    }
}

struct Dbs {
    passwd: Db,
    group: Db,
    shadow: Db,
    gshadow: Option<Db>,
}

/// Applies users tables' lines the way mkusers does: main groups with a
/// fixed gid, then those with an automatic one, then supplementary groups,
/// then users with a fixed uid, then automatic ones; finally home
/// directories are created and given to their users.
pub fn apply_users<T: Target + ?Sized>(
    t: &mut T,
    lines: &[UserLine],
    opts: &UsersOptions,
) -> Result<(), TableError> {
    let Some(first) = lines.first() else {
        return Ok(());
    };
    let load = |t: &mut T, p: &'static [u8]| -> Result<Db, TableError> {
        Db::load(t, p)
            .map_err(|e| first.origin.err(e))?
            .ok_or_else(|| {
                first
                    .origin
                    .err(format!("the tree has no /{}", String::from_utf8_lossy(p)))
            })
    };
    let mut dbs = Dbs {
        passwd: load(t, b"etc/passwd")?,
        group: load(t, b"etc/group")?,
        shadow: load(t, b"etc/shadow")?,
        gshadow: Db::load(t, b"etc/gshadow").map_err(|e| first.origin.err(e))?,
    };
    for l in lines.iter().filter(|l| l.gid > 0) {
        add_group(&mut dbs, &l.group, l.gid).map_err(|e| l.origin.err(e))?;
    }
    for l in lines.iter().filter(|l| l.gid < 0) {
        add_group(&mut dbs, &l.group, l.gid).map_err(|e| l.origin.err(e))?;
    }
    for l in lines {
        let auto = if l.uid == -1 || (1..=i64::from(SYSTEM_IDS.1)).contains(&l.uid) {
            -1
        } else {
            -2
        };
        for g in &l.groups {
            add_group(&mut dbs, g, auto).map_err(|e| l.origin.err(e))?;
        }
    }
    let users = lines.iter().filter(|l| l.name.is_some());
    for l in users.clone().filter(|l| l.uid > 0) {
        add_user(&mut dbs, l, opts).map_err(|e| l.origin.err(e))?;
    }
    for l in users.clone().filter(|l| l.uid < 0) {
        add_user(&mut dbs, l, opts).map_err(|e| l.origin.err(e))?;
    }
    let store = |t: &mut T, db: &Db| db.store(t).map_err(|e| first.origin.err(e));
    store(t, &dbs.passwd)?;
    store(t, &dbs.group)?;
    store(t, &dbs.shadow)?;
    if let Some(g) = &dbs.gshadow {
        store(t, g)?;
    }
    for l in users {
        if let (Some(name), Some(home)) = (&l.name, &l.home) {
            make_home(t, &dbs, name, home, opts.mtime).map_err(|e| l.origin.err(e))?;
        }
    }
    Ok(())
}

fn add_group(dbs: &mut Dbs, name: &str, gid: i64) -> Result<(), String> {
    let existing = dbs.group.id_of(name);
    let gid = match u32::try_from(gid) {
        Ok(fixed) => {
            if let Some(old) = existing.filter(|&g| g != fixed) {
                return Err(format!(
                    "group '{name}' already exists with gid {old}, not {fixed}"
                ));
            }
            if let Some(other) = dbs.group.name_of(fixed).filter(|&o| o != name) {
                return Err(format!(
                    "gid {fixed} of group '{name}' is already used by group '{other}'"
                ));
            }
            fixed
        }
        Err(_) => match existing {
            Some(g) => g,
            None => {
                let range = if gid == -1 { SYSTEM_IDS } else { USER_IDS };
                dbs.group.lowest_free(range).ok_or_else(|| {
                    format!("no free gid in {}-{} for group '{name}'", range.0, range.1)
                })?
            }
        },
    };
    let members = dbs
        .group
        .take(name)
        .and_then(|l| l.get(3).cloned())
        .unwrap_or_default();
    dbs.group
        .lines
        .push(vec![name.into(), "x".into(), gid.to_string(), members]);
    if let Some(gs) = &mut dbs.gshadow {
        gs.take(name);
        gs.lines
            .push(vec![name.into(), "*".into(), String::new(), String::new()]);
    }
    Ok(())
}

fn add_user(dbs: &mut Dbs, l: &UserLine, opts: &UsersOptions) -> Result<(), String> {
    let Some(name) = l.name.as_deref() else {
        return Ok(());
    };
    let gid = dbs
        .group
        .id_of(&l.group)
        .ok_or_else(|| format!("group '{}' of user '{name}' does not exist", l.group))?;
    let existing = dbs.passwd.find(name).cloned();
    if let Some(old_gid) = existing
        .as_ref()
        .and_then(|e| e.get(3)?.parse::<u32>().ok())
        && old_gid != gid
    {
        return Err(format!(
            "user '{name}' already exists with main group gid {old_gid}, not '{}' ({gid})",
            l.group
        ));
    }
    let existing = existing.and_then(|e| e.get(2)?.parse::<u32>().ok());
    let uid = match u32::try_from(l.uid) {
        Ok(fixed) => {
            if let Some(old) = existing.filter(|&u| u != fixed) {
                return Err(format!(
                    "user '{name}' already exists with uid {old}, not {fixed}"
                ));
            }
            if let Some(other) = dbs.passwd.name_of(fixed).filter(|&o| o != name) {
                return Err(format!(
                    "uid {fixed} of user '{name}' is already used by user '{other}'"
                ));
            }
            fixed
        }
        Err(_) => match existing {
            Some(u) => u,
            None => {
                let range = if l.uid == -1 { SYSTEM_IDS } else { USER_IDS };
                dbs.passwd.lowest_free(range).ok_or_else(|| {
                    format!("no free uid in {}-{} for user '{name}'", range.0, range.1)
                })?
            }
        },
    };
    let hash = match &l.password {
        Password::Literal(p) => p.clone(),
        Password::Clear { text, locked } => {
            let salt = salt(opts.source_date_epoch, name)?;
            let h = sha512_crypt(text.as_bytes(), &salt)?;
            if *locked { format!("!{h}") } else { h }
        }
    };
    dbs.passwd.take(name);
    dbs.passwd.lines.push(vec![
        name.into(),
        "x".into(),
        uid.to_string(),
        gid.to_string(),
        l.comment.clone(),
        l.home.clone().unwrap_or_else(|| "/".into()),
        l.shell.clone(),
    ]);
    dbs.shadow.take(name);
    let mut shadow = vec![name.to_owned(), hash];
    shadow.resize(9, String::new());
    dbs.shadow.lines.push(shadow);
    for g in &l.groups {
        if let Some(line) = dbs.group.lines.iter_mut().find(|x| x[0] == *g) {
            line.resize(4, String::new());
            let present = line[3].split(',').any(|m| m == name);
            if !present {
                if !line[3].is_empty() {
                    line[3].push(',');
                }
                line[3].push_str(name);
            }
        }
    }
    Ok(())
}

/// `mkdir -p` the home (new directories 0755 root), then `chown -h -R` it
/// to the user, as the fakeroot script does after mkusers.
fn make_home<T: Target + ?Sized>(
    t: &mut T,
    dbs: &Dbs,
    name: &str,
    home: &str,
    mtime: Time,
) -> Result<(), String> {
    let line = dbs.passwd.find(name).ok_or("vanished from /etc/passwd")?;
    let id = |i: usize| {
        line.get(i)
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or("bad passwd line")
    };
    let (uid, gid) = (id(2)?, id(3)?);
    let r = resolve(
        t,
        home.as_bytes(),
        true,
        Some(Meta::new(0o755, 0, 0, mtime)),
    )?
    .ok_or_else(|| format!("home {home} could not be created"))?;
    let kind = t.node(r.id).kind();
    if kind != Kind::Dir {
        return Err(format!("home {home} exists as a {}", kind.name()));
    }
    for p in super::devices::subtree(t, r.path) {
        t.modify(&p, &mut |i| {
            i.meta.uid = uid;
            i.meta.gid = gid;
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

const CRYPT_B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A 16-character salt: from `SOURCE_DATE_EPOCH` and the user name when
/// set (reproducible images), else from the kernel's random source.
fn salt(source_date_epoch: Option<i64>, user: &str) -> Result<String, String> {
    let seed: Vec<u8> = match source_date_epoch {
        Some(sde) => {
            let mut h = Sha512::new();
            h.update(b"rootforge users salt\0");
            h.update(sde.to_le_bytes());
            h.update(user.as_bytes());
            h.finalize().to_vec()
        }
        None => {
            let mut buf = [0u8; 16];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut buf))
                .map_err(|e| format!("reading /dev/urandom for a password salt: {e}"))?;
            buf.to_vec()
        }
    };
    Ok(seed
        .iter()
        .take(16)
        .map(|b| char::from(CRYPT_B64[usize::from(b & 0x3f)]))
        .collect())
}

/// glibc's SHA-512 crypt with the default 5000 rounds: `$6$salt$hash`.
pub fn sha512_crypt(password: &[u8], salt: &str) -> Result<String, String> {
    let params = sha_crypt::Params::new(5000).map_err(|e| e.to_string())?;
    let d = sha_crypt::sha512_crypt(password, salt.as_bytes(), params);
    // The digest bytes go out in this order, three at a time.
    const ORDER: [(usize, usize, usize); 21] = [
        (0, 21, 42),
        (22, 43, 1),
        (44, 2, 23),
        (3, 24, 45),
        (25, 46, 4),
        (47, 5, 26),
        (6, 27, 48),
        (28, 49, 7),
        (50, 8, 29),
        (9, 30, 51),
        (31, 52, 10),
        (53, 11, 32),
        (12, 33, 54),
        (34, 55, 13),
        (56, 14, 35),
        (15, 36, 57),
        (37, 58, 16),
        (59, 17, 38),
        (18, 39, 60),
        (40, 61, 19),
        (62, 20, 41),
    ];
    let salt: String = salt.chars().take(16).collect();
    let mut out = format!("$6${salt}$");
    let mut put = |w: u32, n: usize| {
        let mut w = w;
        for _ in 0..n {
            out.push(char::from(CRYPT_B64[(w & 0x3f) as usize]));
            w >>= 6;
        }
    };
    for (a, b, c) in ORDER {
        put(
            u32::from(d[a]) << 16 | u32::from(d[b]) << 8 | u32::from(d[c]),
            4,
        );
    }
    put(u32::from(d[63]), 2);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rootforge_common::{Content, Edit, FileData, Inode, Replace, TreeBuilder};

    const T: Time = Time::from_secs(9);

    fn tree() -> TreeBuilder {
        let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, T));
        for (p, perm, data) in [
            (&b"etc/passwd"[..], 0o644, &b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nold:x:100:100::/:/bin/false\n"[..]),
            (b"etc/group", 0o644, b"root:x:0:\ndaemon:x:1:\nold:x:100:\nvideo:x:44:old\n"),
            (b"etc/shadow", 0o600, b"root::::::::\ndaemon:*:::::::\nold:*:::::::\n"),
        ] {
            b.insert(p, Inode::new(Meta::new(perm, 0, 0, T), Content::File(FileData::bytes(data))), Replace::Always)
                .unwrap();
        }
        b
    }

    fn text(b: &TreeBuilder, p: &[u8]) -> String {
        match &b.inode(b.lookup(p).unwrap()).content {
            Content::File(d) => String::from_utf8(d.to_vec().unwrap()).unwrap(),
            _ => panic!("not a file"),
        }
    }

    fn apply(b: &mut TreeBuilder, table: &str) -> Result<(), TableError> {
        let lines = parse_users_table(table, Path::new("users.txt"))?;
        let opts = UsersOptions {
            source_date_epoch: Some(1_700_000_000),
            mtime: T,
        };
        apply_users(b, &lines, &opts)
    }

    #[test]
    fn sha512_crypt_matches_openssl() {
        // `openssl passwd -6 -salt abcdefghijklmnop s3cret`
        assert_eq!(
            sha512_crypt(b"s3cret", "abcdefghijklmnop").unwrap(),
            "$6$abcdefghijklmnop$MX/U/9p1vJFl3WHuV0LxXU6VyeXNhxK34.H5GaCGFz3VpOLhXvzju3d5SbC6VFmLrYkfJPFXjzdpZoq3w/Yul0"
        );
    }

    #[test]
    fn ids_are_allocated_in_mkusers_order() {
        let mut b = tree();
        // Automatic users come after fixed ones, and main groups before
        // supplementary ones, whatever the line order.
        apply(
            &mut b,
            "auto1 -1 autog -1 - - - newsup,video First auto\n\
             fixed 101 fixedg 101 * /home/fixed /bin/sh - -\n\
             user2 -2 users2 -2 !locked - - - -\n\
             - -1 onlygroup 1500 - - - - -\n",
        )
        .unwrap();
        assert_eq!(
            text(&b, b"etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nold:x:100:100::/:/bin/false\n\
             fixed:x:101:101:-:/home/fixed:/bin/sh\nauto1:x:102:102:First auto:/:/bin/false\nuser2:x:1000:1000:-:/:/bin/false\n"
        );
        assert_eq!(
            text(&b, b"etc/group"),
            "root:x:0:\ndaemon:x:1:\nold:x:100:\nfixedg:x:101:\nonlygroup:x:1500:\nautog:x:102:\nusers2:x:1000:\nnewsup:x:103:auto1\nvideo:x:44:old,auto1\n"
        );
        let shadow = text(&b, b"etc/shadow");
        assert!(
            shadow.ends_with("fixed:*:::::::\nauto1::::::::\nuser2:!locked:::::::\n"),
            "{shadow}"
        );
        let home = b.inode(b.lookup(b"home/fixed").unwrap());
        assert_eq!(
            (home.meta.uid, home.meta.gid, home.meta.perm),
            (101, 101, 0o755)
        );
        assert_eq!(b.inode(b.lookup(b"home").unwrap()).meta.uid, 0);
    }

    #[test]
    fn clear_passwords_are_hashed_reproducibly() {
        let mut a = tree();
        let mut b = tree();
        let table = "u1 -1 g -1 =pw - - - -\nu2 -1 g -1 !=pw - - - -\n";
        apply(&mut a, table).unwrap();
        apply(&mut b, table).unwrap();
        let shadow = text(&a, b"etc/shadow");
        assert_eq!(shadow, text(&b, b"etc/shadow"));
        let hash = |u: &str| {
            shadow
                .lines()
                .find(|l| l.starts_with(u))
                .unwrap()
                .split(':')
                .nth(1)
                .unwrap()
                .to_owned()
        };
        let h1 = hash("u1:");
        let salt = h1.split('$').nth(2).unwrap();
        assert_eq!(h1, sha512_crypt(b"pw", salt).unwrap());
        let h2 = hash("u2:");
        assert!(
            h2.starts_with("!$6$") && h2 != format!("!{h1}"),
            "salts differ per user: {h2}"
        );
        // Without SOURCE_DATE_EPOCH the salt is random.
        assert_ne!(
            super::salt(None, "u1").unwrap(),
            super::salt(None, "u1").unwrap()
        );
    }

    #[test]
    fn conflicts_are_errors_with_file_and_line() {
        let e = |t: &str| apply(&mut tree(), t).unwrap_err().to_string();
        assert_eq!(
            e("a 1 g 5 - - - - -"),
            "users.txt:1: uid 1 of user 'a' is already used by user 'daemon'"
        );
        assert_eq!(
            e("\nold 100 old 7 - - - - -"),
            "users.txt:2: group 'old' already exists with gid 100, not 7"
        );
        assert_eq!(
            e("old 200 old 100 - - - - -"),
            "users.txt:1: user 'old' already exists with uid 100, not 200"
        );
        assert_eq!(
            e("old -1 daemon 1 - - - - -"),
            "users.txt:1: user 'old' already exists with main group gid 100, not 'daemon' (1)"
        );
        assert_eq!(
            e("x 5 newg 1 - - - - -"),
            "users.txt:1: gid 1 of group 'newg' is already used by group 'daemon'"
        );
        let p = |t: &str| {
            parse_users_table(t, Path::new("u"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            p("a 0 g 5 - - - - -"),
            "u:1: bad uid '0' (a number above 0, -1 or -2)"
        );
        assert_eq!(
            p("root 5 root 5 - - - - -"),
            "u:1: the root user cannot be defined in a users table"
        );
        assert_eq!(
            p("a 5 g 5 - home - - -"),
            "u:1: home 'home' must be an absolute path other than /"
        );
        assert_eq!(p("a 5 g 5 - /h"), "u:1: missing shell field");
        assert_eq!(p("a 5 g:x 5 - /h - - -"), "u:1: no field may contain ':'");
    }

    #[test]
    fn gshadow_is_kept_in_step() {
        let mut b = tree();
        b.insert(
            b"etc/gshadow",
            Inode::new(
                Meta::new(0o600, 0, 0, T),
                Content::File(FileData::bytes(&b"root:*::\n"[..])),
            ),
            Replace::Always,
        )
        .unwrap();
        apply(&mut b, "a -1 ag -1 - - - - -\n").unwrap();
        assert_eq!(text(&b, b"etc/gshadow"), "root:*::\nag:*::\n");
        assert_eq!(b.inode(b.lookup(b"etc/shadow").unwrap()).meta.perm, 0o600);
    }
}
