//! Server-sent events, rewritten as they stream: the body is split into events at blank lines
//! (any of the three line endings the format allows), each event is offered to a rewriter,
//! and events it leaves alone go out byte for byte. An event's `data` lines are joined with
//! `\n`, as the format says; a rewritten event keeps its other fields (`id`, `event`, `retry`)
//! and writes its new data one `data:` line per line.

use bytes::{Bytes, BytesMut};

/// The largest event held back while its end has not arrived (a list result of thousands of
/// tools fits many times over; anything bigger is cut off rather than buffered without bound).
pub(crate) const MAX_EVENT: usize = 16 * 1024 * 1024;

/// Why the stream was cut off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    /// An event grew past [`MAX_EVENT`] without ending.
    #[error("a server-sent event exceeded {MAX_EVENT} bytes")]
    TooLarge,
}

/// Splits a byte stream into events and rewrites them.
pub(crate) struct EventRewriter<F> {
    pending: BytesMut,
    scan: Scan,
    rewrite: F,
}

/// One event's fields, borrowed from the stream.
pub(crate) struct Event<'a> {
    lines: Vec<&'a [u8]>,
}

impl Event<'_> {
    /// The event's data: its `data` fields joined with `\n` (`None` without any).
    pub(crate) fn data(&self) -> Option<Vec<u8>> {
        let mut data: Option<Vec<u8>> = None;
        for line in &self.lines {
            let (name, value) = field(line);
            if name == b"data" {
                let data = data.get_or_insert_with(Vec::new);
                data.extend_from_slice(value);
                data.push(b'\n');
            }
        }
        data.map(|mut data| {
            data.pop();
            data
        })
    }

    /// The event again, with `data` in place of its data fields.
    fn with_data(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        for line in self.lines.iter().filter(|l| field_name(l) != b"data") {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        for line in data.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
            out.push(b'\n');
        }
        out.push(b'\n');
        out
    }
}

fn field_name(line: &[u8]) -> &[u8] {
    field(line).0
}

/// A line's field name and value (one leading space of the value dropped). A comment line
/// (`:…`) has an empty name.
fn field(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|b| *b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[]),
    }
}

/// Where the search for an event's end stopped, so that the next chunk resumes it instead
/// of searching the whole event again.
#[derive(Debug, Clone, Copy)]
struct Scan {
    pos: usize,
    /// Whether `pos` is at the start of a line (a line ending there ends the event).
    line_start: bool,
}

impl Scan {
    const START: Scan = Scan { pos: 0, line_start: true };

    /// The end of the first event in `buf` (the index just past its blank line), resuming
    /// where the last call stopped. Lines end in `\r\n`, `\n` or `\r`.
    fn event_end(&mut self, buf: &[u8]) -> Option<usize> {
        let mut i = self.pos;
        while i < buf.len() {
            let len = match buf[i] {
                b'\r' if buf.get(i + 1) == Some(&b'\n') => 2,
                // A `\r` at the end of what has arrived may be the first half of `\r\n`: wait.
                b'\r' if i + 1 == buf.len() => break,
                b'\r' | b'\n' => 1,
                _ => {
                    self.line_start = false;
                    i += 1;
                    continue;
                }
            };
            if self.line_start {
                *self = Scan::START;
                return Some(i + len);
            }
            self.line_start = true;
            i += len;
        }
        self.pos = i;
        None
    }
}

/// The lines of one event (without their endings and the blank line).
fn lines(event: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = event;
    while !rest.is_empty() {
        let end = rest.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(rest.len());
        if end == 0 {
            break; // the blank line
        }
        lines.push(&rest[..end]);
        let skip = match (rest.get(end), rest.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        rest = &rest[end + skip..];
    }
    lines
}

impl<F> EventRewriter<F>
where
    F: FnMut(&Event<'_>, &[u8]) -> Option<Vec<u8>>,
{
    /// A rewriter calling `rewrite(event, data)` for each event that has data: `Some(new
    /// data)` replaces the event's data, `None` leaves the event as it was.
    pub(crate) fn new(rewrite: F) -> Self {
        Self { pending: BytesMut::new(), scan: Scan::START, rewrite }
    }

    /// Takes `chunk`; returns what can be sent on.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Bytes, SseError> {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = self.scan.event_end(&self.pending) {
            let event = self.pending.split_to(end);
            let parsed = Event { lines: lines(&event) };
            match parsed.data().and_then(|data| (self.rewrite)(&parsed, &data)) {
                Some(new_data) => out.extend_from_slice(&parsed.with_data(&new_data)),
                None => out.extend_from_slice(&event),
            }
        }
        if self.pending.len() > MAX_EVENT {
            return Err(SseError::TooLarge);
        }
        Ok(out.freeze())
    }

    /// The end of the stream: what is left of an unfinished event goes out as it was (the
    /// format discards an unfinished event, so the client does too).
    pub(crate) fn finish(&mut self) -> Bytes {
        self.pending.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str], rewrite: impl FnMut(&Event<'_>, &[u8]) -> Option<Vec<u8>>) -> String {
        let mut rewriter = EventRewriter::new(rewrite);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&rewriter.push(chunk.as_bytes()).unwrap());
        }
        out.extend_from_slice(&rewriter.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn untouched_events_pass_byte_for_byte_however_they_are_split() {
        let stream = "id: 1\r\ndata: {\"a\":1}\r\n\r\n: comment\n\nevent: message\rdata: x\r\r";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(run(&[a, b], |_, _| None), stream, "split at {split}");
        }
    }

    #[test]
    fn rewritten_events_keep_their_other_fields() {
        let stream = "id: 7\nevent: message\ndata: {\"tools\":\ndata: [1,2]}\n\ndata: other\n\n";
        let out =
            run(&[stream], |_, data| (data == b"{\"tools\":\n[1,2]}").then(|| b"{\"tools\":[1]}".to_vec()));
        assert_eq!(out, "id: 7\nevent: message\ndata: {\"tools\":[1]}\n\ndata: other\n\n");
        // New data with line breaks becomes several data lines.
        let out = run(&["data: a\n\n"], |_, _| Some(b"x\ny".to_vec()));
        assert_eq!(out, "data: x\ndata: y\n\n");
    }

    #[test]
    fn data_is_joined_as_the_format_says() {
        let mut seen = Vec::new();
        run(&["data:no-space\ndata:  two\ndata\n\n"], |_, data| {
            seen.push(String::from_utf8(data.to_vec()).unwrap());
            None
        });
        assert_eq!(seen, ["no-space\n two\n"]);
    }

    #[test]
    fn an_endless_event_is_cut_off() {
        let mut rewriter = EventRewriter::new(|_: &Event<'_>, _: &[u8]| None);
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Bytes::new());
        for _ in 0..17 {
            result = rewriter.push(&chunk);
        }
        assert_eq!(result, Err(SseError::TooLarge));
    }
}
