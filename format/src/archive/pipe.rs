//! A bounded in-memory pipe between two threads: the writer half buffers into
//! fixed-size chunks and blocks when the queue is full, so memory stays bounded
//! (about `CHUNK * (DEPTH + 2)` bytes) whatever the stream length. Dropping either
//! half ends the stream for the other (EOF for the reader, BrokenPipe for the writer).

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 4;

/// The writing half.
#[derive(Debug)]
pub(crate) struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

/// The reading half.
#[derive(Debug)]
pub(crate) struct PipeReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// A new pipe.
pub(crate) fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader stopped"))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_a_stream_between_threads() {
        let (mut w, mut r) = pipe();
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                w.write_all(&[(i % 251) as u8; 1000]).unwrap();
            }
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got.len(), 1_000_000);
        assert_eq!(got[999_999], (999 % 251) as u8);
    }

    #[test]
    fn writer_sees_a_dropped_reader() {
        let (mut w, r) = pipe();
        drop(r);
        let err = (0..100)
            .find_map(|_| w.write_all(&[0; CHUNK]).err())
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
