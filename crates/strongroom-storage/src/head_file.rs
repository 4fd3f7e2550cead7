//! The signed-head file: the newest signed chain head, kept outside the database so that
//! records cut from the database's tail, even together with their heads, are detected.
//!
//! The file has two fixed slots. Each update overwrites the slot that does not hold the
//! newest head and then `fdatasync`s, so a torn write can only damage the slot being written
//! and the other still holds the previous head: the update is atomic without a rename.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use strongroom_audit::{HEAD_SLOT_LEN, decode_head_slot, encode_head_slot};
use strongroom_core::record::SignedHead;

use crate::error::{Error, io};

/// An open head file.
#[derive(Debug)]
pub struct HeadFile {
    file: File,
    next_slot: u64,
    /// The newest head's sequence number in the file: a head below it is never written, so
    /// the file keeps the high-water mark rollback detection compares with.
    newest: Option<u64>,
}

impl HeadFile {
    /// Opens (creating if needed, mode 0600) the head file for writing.
    ///
    /// # Errors
    /// I/O failures.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io("open head file"))?;
        let heads = read_slots(&file)?;
        // Write next into the slot that does not hold the newest head.
        let next_slot = match (&heads[0], &heads[1]) {
            (Some(a), Some(b)) if a.seq >= b.seq => 1,
            (Some(_), None) => 1,
            _ => 0,
        };
        let newest = heads.iter().flatten().map(|h| h.seq).max();
        Ok(Self {
            file,
            next_slot,
            newest,
        })
    }

    /// Durably records `head` as the newest signed head.
    ///
    /// # Errors
    /// I/O failures; the caller must treat them as fatal for the audit log (fail closed).
    pub fn write(&mut self, head: &SignedHead) -> Result<(), Error> {
        // Only forwards: a lower head means the database went back under a running node.
        if self.newest.is_some_and(|n| head.seq < n) {
            return Err(Error::Corrupt(
                "an audit head older than the head file's: the database was rolled back",
            ));
        }
        let offset = self.next_slot * HEAD_SLOT_LEN as u64;
        self.file
            .write_all_at(&encode_head_slot(head), offset)
            .map_err(io("write head file"))?;
        self.file.sync_data().map_err(io("sync head file"))?;
        self.next_slot ^= 1;
        self.newest = Some(head.seq);
        Ok(())
    }

    /// Replaces the high-water mark with `head`, even an older one: only for a rollback that
    /// enough security officers accepted (the database is now, deliberately, the older copy).
    /// Both slots are rewritten, so neither keeps the newer head.
    ///
    /// # Errors
    /// I/O failures.
    pub fn danger_rebase(&mut self, head: &SignedHead) -> Result<(), Error> {
        let slot = encode_head_slot(head);
        // One slot, synced, then the other: a crash leaves at least one valid head.
        for i in 0..2u64 {
            self.file
                .write_all_at(&slot, i * HEAD_SLOT_LEN as u64)
                .map_err(io("write head file"))?;
            self.file.sync_data().map_err(io("sync head file"))?;
        }
        self.next_slot = 0;
        self.newest = Some(head.seq);
        Ok(())
    }

    /// Reads every well-formed slot of the head file at `path` (none if it does not exist).
    /// Signatures are not checked here: the verifier does that, and a slot torn by a crash
    /// fails its signature.
    ///
    /// # Errors
    /// I/O failures other than the file being absent.
    pub fn read(path: &Path) -> Result<Vec<SignedHead>, Error> {
        match File::open(path) {
            Ok(f) => Ok(read_slots(&f)?.into_iter().flatten().collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(Error::Io {
                what: "read head file",
                source: e,
            }),
        }
    }
}

fn read_slots(file: &File) -> Result<[Option<SignedHead>; 2], Error> {
    let mut out = [None, None];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut buf = vec![0u8; HEAD_SLOT_LEN];
        let offset = (i * HEAD_SLOT_LEN) as u64;
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => *slot = decode_head_slot(&buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => {
                return Err(Error::Io {
                    what: "read head file",
                    source: e,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::{UnixMillis, VaultId};

    fn head(seq: u64) -> SignedHead {
        SignedHead {
            vault_id: VaultId::from_random([1; 16]),
            seq,
            hash: [seq as u8; 32],
            time: UnixMillis(seq),
            signature: [7; 64],
        }
    }

    #[test]
    fn alternates_slots_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-head");
        assert!(HeadFile::read(&path).unwrap().is_empty());
        let mut f = HeadFile::open(&path).unwrap();
        f.write(&head(1)).unwrap();
        f.write(&head(2)).unwrap();
        f.write(&head(3)).unwrap();
        let mut seqs: Vec<u64> = HeadFile::read(&path)
            .unwrap()
            .iter()
            .map(|h| h.seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![2, 3]);
        drop(f);
        // Reopening must overwrite the older slot (2), keeping 3.
        let mut f = HeadFile::open(&path).unwrap();
        f.write(&head(4)).unwrap();
        let mut seqs: Vec<u64> = HeadFile::read(&path)
            .unwrap()
            .iter()
            .map(|h| h.seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![3, 4]);
    }

    #[test]
    fn never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-head");
        let mut f = HeadFile::open(&path).unwrap();
        f.write(&head(10)).unwrap();
        f.write(&head(11)).unwrap();
        // A head below the newest (a database put back under a running node) is refused,
        // also after a reopen, and the high-water mark stays for the next start to compare.
        assert!(matches!(f.write(&head(5)), Err(Error::Corrupt(_))));
        drop(f);
        let mut f = HeadFile::open(&path).unwrap();
        assert!(f.write(&head(6)).is_err());
        assert!(f.write(&head(7)).is_err());
        assert_eq!(
            HeadFile::read(&path).unwrap().iter().map(|h| h.seq).max(),
            Some(11)
        );
        f.write(&head(11)).unwrap();
        f.write(&head(12)).unwrap();
    }

    #[test]
    fn a_torn_slot_leaves_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-head");
        let mut f = HeadFile::open(&path).unwrap();
        f.write(&head(1)).unwrap();
        f.write(&head(2)).unwrap();
        // Simulate a torn write of slot 0 (which held head 1 and is next to be written).
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&[0xff; 40], 0)
            .unwrap();
        let heads = HeadFile::read(&path).unwrap();
        assert_eq!(heads.iter().map(|h| h.seq).max(), Some(2));
    }
}
