//! Writing a planned image, in increasing offset order.

use std::io;

use rootforge_common::{Encoder, Error, FileData, ImagePlan, Report, Result, Sink, Source, View};

use crate::plan::{Namespace, Plan, Rec, Stored, Target, check, plan};
use crate::susp::{self, Areas};
use crate::{BLOCK, IsoEncoder, boot, both16, both32, time};

impl Encoder for IsoEncoder {
    fn format(&self) -> &'static str {
        "iso9660"
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        check(self, &view)?;
        let plan = plan(self, view)?;
        Ok(Box::new(Planned { enc: self, plan }))
    }
}

/// An ISO image planned for one view.
struct Planned<'v> {
    enc: &'v IsoEncoder,
    plan: Plan<'v>,
}

impl ImagePlan for Planned<'_> {
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        let mut w = Out::new(out);
        write_image(self.enc, &self.plan, &mut w)
            .map_err(|e| Error::io("writing the ISO9660 image", e))?;
        w.flush()
            .map_err(|e| Error::io("writing the ISO9660 image", e))?;
        Ok(Report {
            bytes: w.pos,
            warnings: self.plan.warnings,
        })
    }
}

/// Gathers small writes into large ones; large file data and runs of zeros
/// go to the sink directly.
struct Out<'s> {
    sink: &'s mut dyn Sink,
    buf: Vec<u8>,
    pos: u64,
}

const FLUSH_AT: usize = 1 << 20;

impl<'s> Out<'s> {
    fn new(sink: &'s mut dyn Sink) -> Self {
        Out {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + BLOCK as usize),
            pos: 0,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        self.pos += b.len() as u64;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn zeros(&mut self, n: u64) -> io::Result<()> {
        if n < BLOCK * 16 {
            let n = n as usize;
            self.buf.resize(self.buf.len() + n, 0);
            self.pos += n as u64;
            return Ok(());
        }
        self.flush()?;
        self.sink.skip(n)?;
        self.pos += n;
        Ok(())
    }

    fn data(&mut self, d: &FileData) -> io::Result<()> {
        match d.source() {
            Source::Zeros => return self.zeros(d.size()),
            // Holes become skips, so a seekable output stays sparse.
            Source::Sparse { extents, .. } => {
                let mut done = 0u64;
                let mut chunk = Vec::new();
                for e in extents.iter() {
                    self.zeros(e.logical - done)?;
                    let end = e.logical + e.len;
                    let mut at = e.logical;
                    while at < end {
                        let n = (end - at).min(FLUSH_AT as u64) as usize;
                        chunk.resize(n, 0);
                        d.read_at(at, &mut chunk)?;
                        self.put(&chunk)?;
                        at += n as u64;
                    }
                    done = end;
                }
                return self.zeros(d.size() - done);
            }
            _ => {}
        }
        match d.as_slice() {
            Some(s) if s.len() < FLUSH_AT => self.put(s),
            _ => {
                self.flush()?;
                d.write_to(self.sink)?;
                self.pos += d.size();
                Ok(())
            }
        }
    }

    /// Zeros to the next block boundary.
    fn pad(&mut self) -> io::Result<()> {
        let rem = self.pos % BLOCK;
        if rem != 0 {
            self.zeros(BLOCK - rem)?;
        }
        Ok(())
    }

    /// Checks the plan and the stream agree before a region starts.
    fn at(&self, lba: u32) -> io::Result<()> {
        if self.pos != u64::from(lba) * BLOCK {
            return Err(io::Error::other(format!(
                "layout error: block {lba} planned, stream at byte {}",
                self.pos
            )));
        }
        Ok(())
    }
}

/// Block and length a record points at.
fn extent(p: &Plan<'_>, ns: &Namespace, t: Target) -> (u32, u32) {
    match t {
        Target::Dir(d) => (ns.lba[d], ns.size[d] as u32),
        Target::File { slot, part } => p.slots[slot].extent(part),
        Target::Empty => (p.empty_lba, 0),
    }
}

/// A directory record.
fn record(p: &Plan<'_>, ns: &Namespace, areas: Option<&Areas>, r: &Rec, out: &mut Vec<u8>) {
    let start = out.len();
    let (lba, len) = extent(p, ns, r.target);
    out.push(r.len() as u8);
    out.push(0);
    out.extend_from_slice(&both32(lba));
    out.extend_from_slice(&both32(len));
    out.extend_from_slice(&time::short(r.mtime));
    out.push(r.flags);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&both16(1));
    out.push(r.ident.len() as u8);
    out.extend_from_slice(&r.ident);
    if r.ident.len() % 2 == 0 {
        out.push(0);
    }
    out.extend_from_slice(&r.su);
    if let (Some(first), Some(areas)) = (r.ce, areas) {
        let a = &areas.areas[first as usize];
        out.extend_from_slice(&susp::ce(
            p.ce_lba + a.block,
            u32::from(a.offset),
            a.len() as u32,
        ));
    }
    if (out.len() - start) % 2 == 1 {
        out.push(0);
    }
}

/// A directory's extent.
fn dir_extent(p: &Plan<'_>, ns: &Namespace, areas: Option<&Areas>, d: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(ns.size[d] as usize);
    for r in &ns.records[d] {
        let rem = out.len() as u64 % BLOCK;
        if rem + r.len() as u64 > BLOCK {
            out.resize(out.len() + (BLOCK - rem) as usize, 0);
        }
        record(p, ns, areas, r, &mut out);
    }
    out.resize(ns.size[d] as usize, 0);
    out
}

fn path_table(ns: &Namespace, big: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(ns.pt_size as usize);
    for &d in &ns.order {
        let id = &ns.ident[d];
        let parent_dir = ns.parent[d];
        let parent = ns.number[parent_dir];
        out.push(id.len() as u8);
        out.push(0);
        if big {
            out.extend_from_slice(&ns.lba[d].to_be_bytes());
            out.extend_from_slice(&parent.to_be_bytes());
        } else {
            out.extend_from_slice(&ns.lba[d].to_le_bytes());
            out.extend_from_slice(&parent.to_le_bytes());
        }
        out.extend_from_slice(id);
        if id.len() % 2 == 1 {
            out.push(0);
        }
    }
    out
}

/// Text for a descriptor field: d-characters in the primary descriptor,
/// UCS-2 in the Joliet one; padded with spaces.
fn field(text: &str, len: usize, joliet: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    if joliet {
        for c in text.encode_utf16().take(len / 2) {
            out.extend_from_slice(&c.to_be_bytes());
        }
        while out.len() + 2 <= len {
            out.extend_from_slice(&[0, b' ']);
        }
    } else {
        out.extend(text.bytes().take(len).map(|b| match b {
            b'a'..=b'z' => b.to_ascii_uppercase(),
            b'A'..=b'Z' | b'0'..=b'9' | b'_' => b,
            _ => b'_',
        }));
    }
    out.resize(len, if joliet { 0 } else { b' ' });
    out
}

fn volume_descriptor(enc: &IsoEncoder, p: &Plan<'_>, ns: &Namespace, joliet: bool) -> Vec<u8> {
    let mut v = vec![0u8; BLOCK as usize];
    v[0] = if joliet { 2 } else { 1 };
    v[1..6].copy_from_slice(b"CD001");
    v[6] = 1;
    v[8..40].copy_from_slice(&field("", 32, joliet));
    v[40..72].copy_from_slice(&field(&enc.volume_id, 32, joliet));
    v[80..88].copy_from_slice(&both32(p.total));
    if joliet {
        v[88..91].copy_from_slice(b"%/E");
    }
    v[120..124].copy_from_slice(&both16(1));
    v[124..128].copy_from_slice(&both16(1));
    v[128..132].copy_from_slice(&both16(BLOCK as u16));
    v[132..140].copy_from_slice(&both32(ns.pt_size as u32));
    v[140..144].copy_from_slice(&ns.pt_l.to_le_bytes());
    v[148..152].copy_from_slice(&ns.pt_m.to_be_bytes());
    let mut root = Vec::with_capacity(34);
    let r = &ns.records[0][0];
    let bare = Rec {
        ident: vec![0],
        flags: 2,
        target: r.target,
        mtime: r.mtime,
        su: Vec::new(),
        ce: None,
    };
    record(p, ns, None, &bare, &mut root);
    v[156..190].copy_from_slice(&root);
    v[190..318].copy_from_slice(&field("", 128, joliet));
    v[318..446].copy_from_slice(&field("", 128, joliet));
    v[446..574].copy_from_slice(&field("", 128, joliet));
    v[574..702].copy_from_slice(&field("ROOTFORGE", 128, joliet));
    v[702..739].copy_from_slice(&field("", 37, joliet));
    v[739..776].copy_from_slice(&field("", 37, joliet));
    v[776..813].copy_from_slice(&field("", 37, joliet));
    let date = time::long(enc.created);
    v[813..830].copy_from_slice(&date);
    v[830..847].copy_from_slice(&date);
    v[847..864].copy_from_slice(&time::LONG_UNSET);
    v[864..881].copy_from_slice(&date);
    v[881] = 1;
    v
}

fn terminator() -> Vec<u8> {
    let mut v = vec![0u8; BLOCK as usize];
    v[0] = 255;
    v[1..6].copy_from_slice(b"CD001");
    v[6] = 1;
    v
}

fn areas_bytes(p: &Plan<'_>) -> Vec<u8> {
    let a = &p.areas;
    let mut out = vec![0u8; a.blocks() as usize * BLOCK as usize];
    for area in &a.areas {
        let mut at = area.block as usize * BLOCK as usize + usize::from(area.offset);
        out[at..at + area.bytes.len()].copy_from_slice(&area.bytes);
        at += area.bytes.len();
        if let Some(next) = area.next {
            let n = &a.areas[next as usize];
            let ce = susp::ce(p.ce_lba + n.block, u32::from(n.offset), n.len() as u32);
            out[at..at + ce.len()].copy_from_slice(&ce);
        }
    }
    out
}

fn write_image(enc: &IsoEncoder, p: &Plan<'_>, w: &mut Out<'_>) -> io::Result<()> {
    w.put(&boot::system_area(enc, p))?;
    w.at(16)?;
    w.put(&volume_descriptor(enc, p, &p.primary, false))?;
    if let Some(b) = &p.boot {
        w.put(&boot::boot_record(b.catalog))?;
    }
    if let Some(j) = &p.joliet {
        w.put(&volume_descriptor(enc, p, j, true))?;
    }
    w.put(&terminator())?;
    for ns in std::iter::once(&p.primary).chain(&p.joliet) {
        w.at(ns.pt_l)?;
        w.put(&path_table(ns, false))?;
        w.pad()?;
        w.at(ns.pt_m)?;
        w.put(&path_table(ns, true))?;
        w.pad()?;
    }
    let dirs = |w: &mut Out<'_>, ns: &Namespace, areas: Option<&Areas>| -> io::Result<()> {
        for &d in &ns.order {
            w.at(ns.lba[d])?;
            w.put(&dir_extent(p, ns, areas, d))?;
        }
        Ok(())
    };
    dirs(w, &p.primary, Some(&p.areas))?;
    w.at(p.ce_lba)?;
    w.put(&areas_bytes(p))?;
    if let Some(j) = &p.joliet {
        dirs(w, j, None)?;
    }
    if let Some(b) = &p.boot {
        w.at(b.catalog)?;
        w.put(&boot::catalog(enc, p, b))?;
    }
    w.at(p.empty_lba)?;
    w.zeros(BLOCK)?;
    let mut order: Vec<usize> = (0..p.slots.len()).collect();
    order.sort_by_key(|&i| p.slots[i].lba);
    for i in order {
        let s = &p.slots[i];
        w.at(s.lba)?;
        match &s.stored {
            Stored::Plain(d) => w.data(d)?,
            Stored::Zisofs(b) | Stored::Efi(b) => w.put(b)?,
            Stored::BootInfo(d) => {
                let mut bytes = d.to_vec()?;
                boot::info_table(&mut bytes, s.lba);
                w.put(&bytes)?;
            }
        }
        w.pad()?;
    }
    if let Some(at) = p.gpt_backup {
        w.at(at)?;
        w.put(&boot::gpt_backup(enc, p))?;
    }
    w.at(p.total)?;
    Ok(())
}
