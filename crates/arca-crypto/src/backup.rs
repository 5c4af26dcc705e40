//! The backup container: one file, encrypted and integrity-protected, that truncation and
//! reordering cannot pass unnoticed.
//!
//! ```text
//! "ARCABAK1" | u32 header length | header (JSON, clear: what is needed to unseal)
//! chunk*     | u32 length | AES-256-GCM(body key, nonce = 0^4 || index, aad) of payload
//! "ARCAEND1" | u64 chunk count | SHA-256 of every byte before it
//! aad = "arca-backup-v1" || SHA-256(header) || index (u64 BE) || last (1 byte)
//! ```
//!
//! The body key is random per backup and stored in the header wrapped by the root of trust,
//! so only the same custody (shares, unseal-key file or HSM) opens it. The GCM tag of every
//! chunk, bound to its position, the header and whether it is the last, proves the content;
//! the unkeyed trailer hash lets `arca restore` refuse a damaged or cut file before any
//! custody is at hand (a forger could recompute it, but not the tags).

use std::io::{Read, Write};

use arca_core::{Error, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::digest;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"ARCABAK1";
const END: &[u8; 8] = b"ARCAEND1";
const AAD_TAG: &[u8] = b"arca-backup-v1";
/// Payload bytes per chunk before encryption.
pub const CHUNK: usize = 1 << 20;
const MAX_HEADER: usize = 1 << 20;

fn io(e: std::io::Error) -> Error {
    Error::Unavailable {
        message: format!("cannot write the backup: {e}"),
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid("backup", msg)
}

fn aad(header_digest: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_TAG.len() + 32 + 9);
    a.extend_from_slice(AAD_TAG);
    a.extend_from_slice(header_digest);
    a.extend_from_slice(&index.to_be_bytes());
    a.push(last as u8);
    a
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn key(k: &[u8]) -> Result<LessSafeKey> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, k).map_err(|_| Error::internal("backup key"))?,
    ))
}

/// Writes a backup: the header, then payload in sealed chunks, then the trailer.
pub struct BackupWriter<W: Write> {
    out: W,
    key: LessSafeKey,
    header_digest: Vec<u8>,
    hash: digest::Context,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    written: u64,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a backup with its (clear) header, sealed under `body_key` (32 bytes).
    pub fn new(mut out: W, header: &[u8], body_key: &[u8]) -> Result<Self> {
        let mut hash = digest::Context::new(&digest::SHA256);
        let len = u32::try_from(header.len()).map_err(|_| bad("header too large"))?;
        for part in [MAGIC.as_slice(), &len.to_be_bytes(), header] {
            out.write_all(part).map_err(io)?;
            hash.update(part);
        }
        Ok(BackupWriter {
            out,
            key: key(body_key)?,
            header_digest: digest::digest(&digest::SHA256, header).as_ref().to_vec(),
            hash,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK + 4096)),
            index: 0,
            written: (12 + header.len()) as u64,
        })
    }

    /// Adds payload bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= CHUNK {
            let rest = Zeroizing::new(self.buf.split_off(CHUNK));
            self.seal(false)?;
            *self.buf = rest.to_vec();
        }
        Ok(())
    }

    /// Bytes written so far (for progress).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn seal(&mut self, last: bool) -> Result<()> {
        let mut body = std::mem::take(&mut *self.buf);
        self.key
            .seal_in_place_append_tag(
                nonce(self.index),
                Aad::from(aad(&self.header_digest, self.index, last)),
                &mut body,
            )
            .map_err(|_| Error::internal("backup seal"))?;
        let len = u32::try_from(body.len()).map_err(|_| Error::internal("chunk size"))?;
        self.out.write_all(&len.to_be_bytes()).map_err(io)?;
        self.out.write_all(&body).map_err(io)?;
        self.hash.update(&len.to_be_bytes());
        self.hash.update(&body);
        self.written += 4 + body.len() as u64;
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk and writes the trailer; returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.seal(true)?;
        let count = self.index.to_be_bytes();
        self.hash.update(END);
        self.hash.update(&count);
        let d = self.hash.clone().finish();
        for part in [END.as_slice(), &count, d.as_ref()] {
            self.out.write_all(part).map_err(io)?;
        }
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

fn read_exact(r: &mut impl Read, n: usize, what: &str) -> Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    r.read_exact(&mut b).map_err(|_| {
        bad(format!(
            "the file ends inside {what}: it is truncated or not an Arca backup"
        ))
    })?;
    Ok(b)
}

/// Checks a backup's framing and trailer hash without any key: a flipped byte or a cut
/// file is refused here. Returns the header.
pub fn check_file(mut r: impl Read) -> Result<Vec<u8>> {
    let mut hash = digest::Context::new(&digest::SHA256);
    let magic = read_exact(&mut r, 8, "the file signature")?;
    if magic != MAGIC {
        return Err(bad("not an Arca backup (bad file signature)"));
    }
    hash.update(&magic);
    let len = read_exact(&mut r, 4, "the header length")?;
    hash.update(&len);
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    if len > MAX_HEADER {
        return Err(bad("the header length is implausible: the file is damaged"));
    }
    let header = read_exact(&mut r, len, "the header")?;
    hash.update(&header);
    let mut chunks = 0u64;
    loop {
        let tag = read_exact(&mut r, 4, "a chunk")?;
        if tag == END[..4] {
            let rest = read_exact(&mut r, 4, "the trailer")?;
            if rest != END[4..] {
                return Err(bad("the trailer is damaged"));
            }
            let count = read_exact(&mut r, 8, "the trailer")?;
            hash.update(END);
            hash.update(&count);
            let digest_stored = read_exact(&mut r, 32, "the trailer")?;
            if u64::from_be_bytes(count.try_into().expect("8 bytes")) != chunks {
                return Err(bad(
                    "the trailer's chunk count does not match: the file is damaged",
                ));
            }
            if hash.finish().as_ref() != digest_stored.as_slice() {
                return Err(bad(
                    "the file's checksum does not match: it was damaged or altered",
                ));
            }
            let mut extra = [0u8; 1];
            if r.read(&mut extra).unwrap_or(0) != 0 {
                return Err(bad("bytes follow the trailer: the file is damaged"));
            }
            return Ok(header);
        }
        hash.update(&tag);
        let n = u32::from_be_bytes(tag.try_into().expect("4 bytes")) as usize;
        if !(16..=CHUNK + 16).contains(&n) {
            return Err(bad(format!(
                "chunk {chunks} has an impossible length: the file is damaged"
            )));
        }
        let body = read_exact(&mut r, n, "a chunk")?;
        hash.update(&body);
        chunks += 1;
    }
}

/// Reads a backup's payload chunk by chunk, checking every tag with the body key.
pub struct BackupReader<R: Read> {
    r: R,
    key: LessSafeKey,
    header_digest: Vec<u8>,
    index: u64,
    done: bool,
}

impl<R: Read> BackupReader<R> {
    /// Reads the header; [`BackupReader::open_body`] then gives the payload.
    pub fn header(r: &mut R) -> Result<Vec<u8>> {
        let magic = read_exact(r, 8, "the file signature")?;
        if magic != MAGIC {
            return Err(bad("not an Arca backup (bad file signature)"));
        }
        let len = read_exact(r, 4, "the header length")?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        if len > MAX_HEADER {
            return Err(bad("the header length is implausible"));
        }
        read_exact(r, len, "the header")
    }

    /// The payload reader, positioned after the header.
    pub fn open_body(r: R, header: &[u8], body_key: &[u8]) -> Result<Self> {
        Ok(BackupReader {
            r,
            key: key(body_key)?,
            header_digest: digest::digest(&digest::SHA256, header).as_ref().to_vec(),
            index: 0,
            done: false,
        })
    }

    /// The next chunk's payload, `None` after the last one. A chunk that does not verify,
    /// or a file that ends before its last chunk, is an error.
    pub fn next_chunk(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if self.done {
            return Ok(None);
        }
        let tag = read_exact(&mut self.r, 4, "a chunk")?;
        if tag == END[..4] {
            return Err(bad(
                "the backup ends before its last chunk: it was truncated",
            ));
        }
        let n = u32::from_be_bytes(tag.try_into().expect("4 bytes")) as usize;
        if !(16..=CHUNK + 16).contains(&n) {
            return Err(bad(format!(
                "chunk {} has an impossible length",
                self.index
            )));
        }
        let body = read_exact(&mut self.r, n, "a chunk")?;
        for last in [false, true] {
            let mut b = body.clone();
            if let Ok(pt) = self.key.open_in_place(
                nonce(self.index),
                Aad::from(aad(&self.header_digest, self.index, last)),
                &mut b,
            ) {
                let pt = Zeroizing::new(pt.to_vec());
                self.index += 1;
                self.done = last;
                return Ok(Some(pt));
            }
        }
        Err(bad(format!(
            "chunk {} does not verify: the backup was altered, or it was made under another root key",
            self.index
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(payload: &[u8]) -> Vec<u8> {
        let mut w = BackupWriter::new(Vec::new(), b"{\"h\":1}", &[9u8; 32]).unwrap();
        for part in payload.chunks(7000) {
            w.write(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(file: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        let mut r = file;
        let h = BackupReader::header(&mut r)?;
        let mut br = BackupReader::open_body(r, &h, key)?;
        let mut out = vec![];
        while let Some(c) = br.next_chunk()? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    #[test]
    fn round_trip_over_several_chunks() {
        let payload: Vec<u8> = (0..(CHUNK * 2 + 12345)).map(|i| (i % 251) as u8).collect();
        let file = make(&payload);
        assert_eq!(check_file(file.as_slice()).unwrap(), b"{\"h\":1}");
        assert_eq!(read_all(&file, &[9u8; 32]).unwrap(), payload);
        assert!(read_all(&file, &[8u8; 32]).is_err(), "another key");
        let empty = make(b"");
        assert_eq!(read_all(&empty, &[9u8; 32]).unwrap(), b"");
    }

    #[test]
    fn damage_is_refused() {
        let payload: Vec<u8> = (0..(CHUNK + 5000)).map(|i| (i % 13) as u8).collect();
        let file = make(&payload);
        // A flipped byte anywhere: the checksum says so, and the tag too.
        for at in [3, 10, 20, 5000, file.len() / 2, file.len() - 40] {
            let mut f = file.clone();
            f[at] ^= 0x01;
            assert!(check_file(f.as_slice()).is_err(), "flip at {at}");
        }
        let mut f = file.clone();
        f[2000] ^= 1;
        assert!(read_all(&f, &[9u8; 32]).is_err());
        // Truncated anywhere.
        for cut in [5, 11, 100, file.len() / 2, file.len() - 1, file.len() - 44] {
            let msg = check_file(&file[..cut]).unwrap_err().to_string();
            assert!(
                msg.contains("truncated") || msg.contains("damaged"),
                "{cut}: {msg}"
            );
        }
        // Cut after a whole chunk (the first): the keyed reader notices no last chunk.
        let first_len = 12 + 7 + 4 + CHUNK + 16;
        let mut cut = file[..first_len].to_vec();
        cut.extend_from_slice(END);
        assert!(read_all(&cut, &[9u8; 32])
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }
}
