//! Cost of the per-record crypto: sealing and opening a 1 KiB record, and the keyed digest of
//! a token. Commands and results: BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpgate::crypto::{Keyring, RootSecret};

fn crypto(c: &mut Criterion) {
    let ring = Keyring::new(RootSecret::generate(), vec![RootSecret::generate()]);
    let sealer = ring.sealer();
    let record = vec![0x5Au8; 1024];
    c.bench_function("seal_open_1KiB", |b| {
        b.iter(|| {
            let sealed = sealer.seal(b"grants:8f3a", black_box(&record));
            sealer.open(b"grants:8f3a", &sealed).unwrap()
        });
    });
    let digester = ring.digester();
    let token = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    c.bench_function("digest_token", |b| b.iter(|| digester.tag(black_box(token.as_bytes()))));
}

criterion_group!(benches, crypto);
criterion_main!(benches);
