//! The directory index hash (half MD4 over signed characters, as mke2fs
//! on x86 declares it and as most readers assume) and the xattr
//! entry and block hashes.

const K2: u32 = 0o13240474631;
const K3: u32 = 0o15666365641;

fn f(x: u32, y: u32, z: u32) -> u32 {
    z ^ (x & (y ^ z))
}

fn g(x: u32, y: u32, z: u32) -> u32 {
    (x & y).wrapping_add((x ^ y) & z)
}

fn h(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}

fn half_md4_transform(buf: &mut [u32; 4], input: &[u32; 8]) {
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($f($b, $c, $d))
                .wrapping_add($x)
                .rotate_left($s);
        };
    }
    let i = input;
    round!(f, a, b, c, d, i[0], 3);
    round!(f, d, a, b, c, i[1], 7);
    round!(f, c, d, a, b, i[2], 11);
    round!(f, b, c, d, a, i[3], 19);
    round!(f, a, b, c, d, i[4], 3);
    round!(f, d, a, b, c, i[5], 7);
    round!(f, c, d, a, b, i[6], 11);
    round!(f, b, c, d, a, i[7], 19);

    round!(g, a, b, c, d, i[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, i[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, i[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, i[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, i[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, i[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, i[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, i[6].wrapping_add(K2), 13);

    round!(h, a, b, c, d, i[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, i[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, i[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, i[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, i[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, i[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, i[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, i[4].wrapping_add(K3), 15);

    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

/// The kernel's `str2hashbuf_signed`: up to `4 * 8` name bytes, each
/// sign-extended, padded with a pattern made of the remaining length.
fn str2hashbuf(msg: &[u8], out: &mut [u32; 8]) {
    // The kernel folds the length into 8 bits here, as we do.
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut val = pad;
    let mut slot = 0;
    for (i, &c) in msg.iter().take(32).enumerate() {
        // `as i8` then sign extension: a C `signed char` promoted to int.
        val = (i32::from(c as i8) as u32).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[slot] = val;
            slot += 1;
            val = pad;
        }
    }
    if slot < 8 {
        out[slot] = val;
        slot += 1;
    }
    for o in &mut out[slot..] {
        *o = pad;
    }
}

/// The (major, minor) half-MD4 hash of a name, as `DX_HASH_HALF_MD4` with
/// signed characters.
pub(crate) fn dx_hash(name: &[u8], seed: &[u32; 4]) -> (u32, u32) {
    let mut buf = if seed.iter().any(|&w| w != 0) {
        *seed
    } else {
        [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
    };
    let mut input = [0u32; 8];
    let mut rest = name;
    loop {
        str2hashbuf(rest, &mut input);
        half_md4_transform(&mut buf, &input);
        if rest.len() <= 32 {
            break;
        }
        rest = &rest[32..];
    }
    let mut hash = buf[1] & !1;
    // The end-of-directory marker may not be a real hash.
    if hash == 0x7fff_ffff << 1 {
        hash = (0x7fff_ffff - 1) << 1;
    }
    (hash, buf[2])
}

/// The hash of one xattr entry: its name (unsigned bytes) then its value
/// in little-endian words.
pub(crate) fn xattr_entry_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut hash = 0u32;
    for &c in name {
        hash = (hash << 5) ^ (hash >> 27) ^ u32::from(c);
    }
    for word in value.chunks(4) {
        let mut w = [0u8; 4];
        w[..word.len()].copy_from_slice(word);
        hash = (hash << 16) ^ (hash >> 16) ^ u32::from_le_bytes(w);
    }
    hash
}

/// The hash of an xattr block, from its entries' hashes.
pub(crate) fn xattr_block_hash(entry_hashes: impl IntoIterator<Item = u32>) -> u32 {
    let mut hash = 0u32;
    for e in entry_hashes {
        if e == 0 {
            return 0;
        }
        hash = (hash << 16) ^ (hash >> 16) ^ e;
    }
    hash
}
