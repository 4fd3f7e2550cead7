//! The byte layout of a database copy (a backup's `rows`; see `docs/formats.md`): the vault
//! row, then each table with its column names and typed cells. Decoding checks every length,
//! so a truncated or padded copy is refused rather than half-read.

use strongroom_core::record::{InitRecord, VaultMeta};
use strongroom_core::storage::{Cell, Dump, TableDump};
use strongroom_core::{UnixMillis, VaultId};

use crate::error::Error;

const MAGIC: &[u8; 8] = b"SRDUMP01";

/// Encodes a database copy.
#[must_use]
pub fn encode(d: &Dump) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(d.vault.vault_id.as_bytes());
    out.extend_from_slice(&d.vault.created_at.0.to_be_bytes());
    match &d.vault.init {
        None => out.push(0),
        Some(i) => {
            out.push(1);
            put32(&mut out, &i.seal_config);
            out.extend_from_slice(&i.root_check);
            out.extend_from_slice(&i.audit_public_key);
            out.extend_from_slice(&i.initialized_at.0.to_be_bytes());
        }
    }
    put_len16(&mut out, d.tables.len());
    for t in &d.tables {
        put16(&mut out, t.table.as_bytes());
        put_len16(&mut out, t.columns.len());
        for c in &t.columns {
            put16(&mut out, c.as_bytes());
        }
        out.extend_from_slice(
            &u32::try_from(t.rows.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for row in &t.rows {
            for cell in row {
                match cell {
                    Cell::Int(None) => out.push(0),
                    Cell::Int(Some(v)) => {
                        out.push(1);
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    Cell::Text(None) => out.push(2),
                    Cell::Text(Some(s)) => {
                        out.push(3);
                        put32(&mut out, s.as_bytes());
                    }
                    Cell::Bytes(None) => out.push(4),
                    Cell::Bytes(Some(b)) => {
                        out.push(5);
                        put32(&mut out, b);
                    }
                }
            }
        }
    }
    out
}

/// Decodes a database copy made by [`encode`].
///
/// # Errors
/// [`Error::Corrupt`] for anything but exactly such a copy.
pub fn decode(b: &[u8]) -> Result<Dump, Error> {
    let mut r = Reader(b);
    if r.take(8)? != MAGIC {
        return Err(bad());
    }
    let vault_id = VaultId::from_bytes(r.array()?);
    let created_at = UnixMillis(r.u64()?);
    let init = match r.u8()? {
        0 => None,
        1 => Some(InitRecord {
            seal_config: r.take32()?.to_vec(),
            root_check: r.array()?,
            audit_public_key: r.array()?,
            initialized_at: UnixMillis(r.u64()?),
        }),
        _ => return Err(bad()),
    };
    let mut tables = Vec::new();
    for _ in 0..r.u16()? {
        let table = r.text16()?;
        let columns = (0..r.u16()?)
            .map(|_| r.text16())
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::new();
        for _ in 0..r.u32()? {
            let mut row = Vec::with_capacity(columns.len());
            for _ in 0..columns.len() {
                row.push(match r.u8()? {
                    0 => Cell::Int(None),
                    1 => Cell::Int(Some(i64::from_be_bytes(r.array()?))),
                    2 => Cell::Text(None),
                    3 => Cell::Text(Some(
                        String::from_utf8(r.take32()?.to_vec()).map_err(|_| bad())?,
                    )),
                    4 => Cell::Bytes(None),
                    5 => Cell::Bytes(Some(r.take32()?.to_vec())),
                    _ => return Err(bad()),
                });
            }
            rows.push(row);
        }
        tables.push(TableDump {
            table,
            columns,
            rows,
        });
    }
    if !r.0.is_empty() {
        return Err(bad());
    }
    Ok(Dump {
        vault: VaultMeta {
            vault_id,
            created_at,
            init,
        },
        tables,
    })
}

fn bad() -> Error {
    Error::Corrupt("the database copy does not parse")
}

fn put_len16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

fn put16(out: &mut Vec<u8>, b: &[u8]) {
    put_len16(out, b.len());
    out.extend_from_slice(b);
}

fn put32(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, rest) = self.0.split_at_checked(n).ok_or_else(bad)?;
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| bad())
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn take32(&mut self) -> Result<&'a [u8], Error> {
        let n = usize::try_from(self.u32()?).map_err(|_| bad())?;
        self.take(n)
    }
    fn text16(&mut self) -> Result<String, Error> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_round_trips_and_damage_is_refused() {
        let d = Dump {
            vault: VaultMeta {
                vault_id: VaultId::from_random([1; 16]),
                created_at: UnixMillis(5),
                init: Some(InitRecord {
                    seal_config: vec![1, 2, 3],
                    root_check: [4; 32],
                    audit_public_key: [5; 32],
                    initialized_at: UnixMillis(6),
                }),
            },
            tables: vec![TableDump {
                table: "t".into(),
                columns: vec!["a".into(), "b".into(), "c".into()],
                rows: vec![
                    vec![
                        Cell::Int(Some(-7)),
                        Cell::Text(Some("é".into())),
                        Cell::Bytes(Some(vec![0, 1])),
                    ],
                    vec![Cell::Int(None), Cell::Text(None), Cell::Bytes(None)],
                ],
            }],
        };
        let bytes = encode(&d);
        assert_eq!(decode(&bytes).unwrap(), d);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}
