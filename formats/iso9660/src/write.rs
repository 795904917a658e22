//! Writing a planned image, in increasing offset order.

use std::io;

use rootforge_common::bytes::{RecordWriter, put_at, usize_from_u32};
use rootforge_common::{Encoder, Error, FileData, ImagePlan, Report, Result, Sink, Source, View};

use crate::areas::{Area, Areas};
use crate::plan::{Namespace, Plan, Rec, Stored, Target, plan};
use crate::raw::dir::{DirectoryRecord, FLAG_DIRECTORY, PathTableRecord, PathTableType};
use crate::raw::fixed;
use crate::raw::susp::{Ce, Entry};
use crate::raw::volume::{
    JOLIET_LEVEL_3, PRIMARY, SUPPLEMENTARY, TERMINATOR, VolumeDescriptor, VolumeDescriptorHeader,
    VolumeDescriptorSetTerminator,
};
use crate::{BLOCK, BLOCK_LEN, IsoEncoder, boot, time};

/// Logical Block Size of the volume descriptors: [`BLOCK`].
const LOGICAL_BLOCK_SIZE: u16 = 2048;

impl Encoder for IsoEncoder {
    fn format(&self) -> &'static str {
        "iso9660"
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
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
    /// Every block of the image, the backup GPT included; the writer
    /// checks it ends there.
    fn size(&self) -> Option<u64> {
        Some(u64::from(self.plan.total) * BLOCK)
    }

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
            buf: Vec::with_capacity(FLUSH_AT + BLOCK_LEN),
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
        if let Ok(small) = usize::try_from(n)
            && small < BLOCK_LEN * 16
        {
            self.buf.resize(self.buf.len() + small, 0);
            self.pos += n;
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
                        let n = usize::try_from(end - at).map_or(FLUSH_AT, |n| n.min(FLUSH_AT));
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
                self.sink.write_data(d)?;
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
        Target::Dir(d) => (ns.lba[d], ns.size[d]),
        Target::File { slot, part } => p.slots[slot].extent(part),
        Target::Empty => (p.empty_lba, 0),
    }
}

/// The `CE` entry that points at continuation area `a`.
fn ce(p: &Plan<'_>, a: &Area) -> Ce {
    Ce {
        block_location: p.ce_lba.saturating_add(a.block),
        offset: u32::from(a.offset),
        // An area lies inside one block.
        length: u32::try_from(a.len()).unwrap_or(u32::MAX),
    }
}

/// The ECMA-119 record of `r` with everything but its system use.
fn directory_record<'r>(p: &Plan<'_>, ns: &Namespace, r: &'r Rec) -> DirectoryRecord<'r> {
    let (location_of_extent, data_length) = extent(p, ns, r.target);
    DirectoryRecord {
        extended_attribute_record_length: 0,
        location_of_extent,
        data_length,
        recording_date_and_time: time::short(r.mtime),
        file_flags: r.flags,
        file_unit_size: 0,
        interleave_gap_size: 0,
        volume_sequence_number: 1,
        file_identifier: &r.ident,
        system_use: &[],
    }
}

/// Appends a directory record with its inline entries and, when they
/// continue, the `CE` that chains them.
fn record(p: &Plan<'_>, ns: &Namespace, areas: Option<&Areas>, r: &Rec, w: &mut RecordWriter) {
    let mut rec = directory_record(p, ns, r);
    let with_ce;
    rec.system_use = match (r.ce, areas) {
        (Some(first), Some(areas)) => {
            let mut su = r.su.clone();
            su.extend(ce(p, &areas.areas[usize_from_u32(first)]).encode());
            with_ce = su;
            &with_ce
        }
        _ => &r.su,
    };
    rec.encode(w);
}

/// A directory's extent: records never straddle a block.
fn dir_extent(p: &Plan<'_>, ns: &Namespace, areas: Option<&Areas>, d: usize) -> Vec<u8> {
    let size = usize_from_u32(ns.size[d]);
    let mut w = RecordWriter::with_capacity(size);
    for r in &ns.records[d] {
        let rem = w.len() % BLOCK_LEN;
        if rem + r.len() > BLOCK_LEN {
            w.zeros(BLOCK_LEN - rem);
        }
        record(p, ns, areas, r, &mut w);
    }
    w.zeros(size.saturating_sub(w.len()));
    w.into_bytes()
}

fn path_table(ns: &Namespace, ty: PathTableType) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(usize::try_from(ns.pt_size).unwrap_or(0));
    for &d in &ns.order {
        PathTableRecord {
            extended_attribute_record_length: 0,
            location_of_extent: ns.lba[d],
            parent_directory_number: ns.number[ns.parent[d]],
            directory_identifier: &ns.ident[d],
        }
        .encode(&mut w, ty);
    }
    w.into_bytes()
}

/// Text for a descriptor field: d-characters in the primary descriptor,
/// UCS-2 in the Joliet one; padded with spaces.
fn field<const N: usize>(text: &str, joliet: bool) -> [u8; N] {
    let mut out = Vec::with_capacity(N);
    if joliet {
        for c in text.encode_utf16().take(N / 2) {
            out.extend_from_slice(&c.to_be_bytes());
        }
        while out.len() + 2 <= N {
            out.extend_from_slice(&[0, b' ']);
        }
    } else {
        out.extend(text.bytes().take(N).map(|b| match b {
            b'a'..=b'z' => b.to_ascii_uppercase(),
            b'A'..=b'Z' | b'0'..=b'9' | b'_' => b,
            _ => b'_',
        }));
    }
    fixed(&out, if joliet { 0 } else { b' ' })
}

fn volume_descriptor(enc: &IsoEncoder, p: &Plan<'_>, ns: &Namespace, joliet: bool) -> Vec<u8> {
    let r = &ns.records[0][0];
    let root = Rec {
        ident: vec![0],
        flags: FLAG_DIRECTORY,
        target: r.target,
        mtime: r.mtime,
        su: Vec::new(),
        ce: None,
    };
    let date = time::long(enc.created);
    let (volume_descriptor_type, escape_sequences) = if joliet {
        (SUPPLEMENTARY, fixed(JOLIET_LEVEL_3, 0))
    } else {
        (PRIMARY, [0; 32])
    };
    let mut w = RecordWriter::with_capacity(BLOCK_LEN);
    VolumeDescriptor {
        header: VolumeDescriptorHeader::new(volume_descriptor_type),
        volume_flags: 0,
        system_identifier: field("", joliet),
        volume_identifier: field(&enc.volume_id, joliet),
        volume_space_size: p.total,
        escape_sequences,
        volume_set_size: 1,
        volume_sequence_number: 1,
        logical_block_size: LOGICAL_BLOCK_SIZE,
        path_table_size: u32::try_from(ns.pt_size).unwrap_or(u32::MAX),
        location_of_type_l_path_table: ns.pt_l,
        location_of_optional_type_l_path_table: 0,
        location_of_type_m_path_table: ns.pt_m,
        location_of_optional_type_m_path_table: 0,
        directory_record_for_root_directory: directory_record(p, ns, &root),
        volume_set_identifier: field("", joliet),
        publisher_identifier: field("", joliet),
        data_preparer_identifier: field("", joliet),
        application_identifier: field("ROOTFORGE", joliet),
        copyright_file_identifier: field("", joliet),
        abstract_file_identifier: field("", joliet),
        bibliographic_file_identifier: field("", joliet),
        volume_creation_date_and_time: date,
        volume_modification_date_and_time: date,
        volume_expiration_date_and_time: time::LONG_UNSET,
        volume_effective_date_and_time: date,
        file_structure_version: 1,
    }
    .encode(&mut w);
    w.into_bytes()
}

fn terminator() -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(BLOCK_LEN);
    VolumeDescriptorSetTerminator {
        header: VolumeDescriptorHeader::new(TERMINATOR),
    }
    .encode(&mut w);
    w.into_bytes()
}

fn layout_error(what: &str) -> io::Error {
    io::Error::other(format!("layout error: {what}"))
}

/// The continuation blocks, each area at its planned offset.
fn areas_bytes(p: &Plan<'_>) -> io::Result<Vec<u8>> {
    let a = &p.areas;
    let mut out = vec![0u8; usize_from_u32(a.blocks()) * BLOCK_LEN];
    for area in &a.areas {
        let at = usize_from_u32(area.block) * BLOCK_LEN + usize::from(area.offset);
        put_at(&mut out, at, &area.bytes)
            .ok_or_else(|| layout_error("continuation area outside its block"))?;
        if let Some(next) = area.next {
            let next = ce(p, &a.areas[usize_from_u32(next)]).encode();
            put_at(&mut out, at + area.bytes.len(), &next)
                .ok_or_else(|| layout_error("CE entry outside its block"))?;
        }
    }
    Ok(out)
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
        w.put(&path_table(ns, PathTableType::L))?;
        w.pad()?;
        w.at(ns.pt_m)?;
        w.put(&path_table(ns, PathTableType::M))?;
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
    w.put(&areas_bytes(p)?)?;
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
                boot::info_table(&mut bytes, s.lba)
                    .ok_or_else(|| layout_error("boot image shorter than its boot info table"))?;
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
