//! Hostile ID blocks and ID authentication structures, as a table: what the host (or whoever
//! hands a launcher its files) could pass to LAUNCH_FINISH, and which check must stop it. Each row
//! starts from a genuine pair (virtee's test keys, every field set) and changes it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use snpkit_idblock::layout::{auth as a, public_key as pk, signature as sig};
use snpkit_idblock::{IdAuth, IdBlock, IdInputs, launch_finish};

/// P-384's field prime p and group order n, little-endian.
fn le(hex_be: &str) -> Vec<u8> {
    let mut v = hex::decode(hex_be).unwrap();
    v.reverse();
    v
}
fn p() -> Vec<u8> {
    le(
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    )
}
fn n() -> Vec<u8> {
    le(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    )
}

/// `m - x` for 48-byte little-endian values, x < m.
fn sub_from(m: &[u8], x: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 48];
    let mut borrow = 0i16;
    for i in 0..48 {
        let d = m[i] as i16 - x[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

fn at(base: std::ops::Range<usize>, field: std::ops::Range<usize>) -> std::ops::Range<usize> {
    base.start + field.start..base.start + field.end
}

type Mutation = Box<dyn Fn(&mut Vec<u8>, &mut Vec<u8>)>;

enum Expect {
    Pass,
    /// The check that fails and a word its message must contain.
    Fail(&'static str, &'static str),
}
use Expect::*;

struct Row {
    name: String,
    /// Start from a pair certified by an author key.
    with_author: bool,
    /// QEMU's author-key-enabled.
    author_key_enabled: bool,
    mutate: Mutation,
    expect: Expect,
}

fn row(name: &str, mutate: impl Fn(&mut Vec<u8>, &mut Vec<u8>) + 'static, expect: Expect) -> Row {
    Row {
        name: name.to_owned(),
        with_author: true,
        author_key_enabled: true,
        mutate: Box::new(mutate),
        expect,
    }
}

/// A row starting from the pair without an author key.
fn plain(
    name: &str,
    enabled: bool,
    mutate: impl Fn(&mut Vec<u8>, &mut Vec<u8>) + 'static,
    expect: Expect,
) -> Row {
    Row {
        with_author: false,
        author_key_enabled: enabled,
        ..row(name, mutate, expect)
    }
}

fn rows() -> Vec<Row> {
    let mut rows = vec![
        row("genuine pair with author key", |_, _| {}, Pass),
        plain("genuine pair without author key", false, |_, _| {}, Pass),
        // Sizes QEMU or a file could hand over.
        row(
            "empty ID block",
            |b, _| b.clear(),
            Fail("id_block.format", "96"),
        ),
        row(
            "ID block one short",
            |b, _| {
                b.pop();
            },
            Fail("id_block.format", "95"),
        ),
        row(
            "ID block one long",
            |b, _| b.push(0),
            Fail("id_block.format", "97"),
        ),
        row(
            "empty ID auth",
            |_, a| a.clear(),
            Fail("id_auth.format", "4096"),
        ),
        row(
            "ID auth one short (QEMU accepts < 4096)",
            |_, a| {
                a.pop();
            },
            Fail("id_auth.format", "4095"),
        ),
        row(
            "ID auth one long",
            |_, a| a.push(0),
            Fail("id_auth.format", "4097"),
        ),
        row(
            "ID auth twice",
            |_, a| {
                let c = a.clone();
                a.extend(c)
            },
            Fail("id_auth.format", "8192"),
        ),
        // ID block fields.
        row(
            "VERSION 0",
            |b, _| b[0x50] = 0,
            Fail("id_block.format", "VERSION"),
        ),
        row(
            "VERSION 0xffffffff",
            |b, _| b[0x50..0x54].fill(0xff),
            Fail("id_block.format", "VERSION"),
        ),
        row(
            "all-zero ID block",
            |b, _| b.fill(0),
            Fail("id_block.format", "VERSION"),
        ),
        row(
            "another LD",
            |b, _| b[0] ^= 1,
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        row(
            "another GUEST_SVN",
            |b, _| b[0x54] = 9,
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        // Algorithms and curves.
        row(
            "ID_KEY_ALGO 0",
            |_, a| a[0] = 0,
            Fail("id_auth.format", "ID_KEY_ALGO"),
        ),
        row(
            "ID_KEY_ALGO 0xffffffff",
            |_, a| a[0..4].fill(0xff),
            Fail("id_auth.format", "ID_KEY_ALGO"),
        ),
        row(
            "AUTHOR_KEY_ALGO 2 with an author key",
            |_, a| a[4] = 2,
            Fail("id_auth.format", "AUTHOR_KEY_ALGO"),
        ),
        row(
            "AUTHOR_KEY_ALGO 0 with an author key",
            |_, a| a[4] = 0,
            Fail("id_auth.format", "AUTHOR_KEY_ALGO"),
        ),
        plain(
            "no author key, AUTHOR_KEY_ALGO 1 (virtee, igvmmeasure)",
            false,
            |_, a| a[4] = 1,
            Pass,
        ),
        plain(
            "no author key, AUTHOR_KEY_ALGO 2",
            false,
            |_, a| a[4] = 2,
            Fail("id_auth.format", "AUTHOR_KEY_ALGO"),
        ),
        row(
            "ID_KEY curve 0",
            |_, a| a[a::ID_KEY.start] = 0,
            Fail("id_auth.format", "CURVE"),
        ),
        row(
            "ID_KEY curve 1 (P-256)",
            |_, a| a[a::ID_KEY.start] = 1,
            Fail("id_auth.format", "CURVE"),
        ),
        row(
            "AUTHOR_KEY curve 0xffffffff",
            |_, a| a[a::AUTHOR_KEY.start..a::AUTHOR_KEY.start + 4].fill(0xff),
            Fail("id_auth.format", "CURVE"),
        ),
        // Key coordinates.
        row(
            "ID_KEY all zero but the curve",
            |_, a| a[a::ID_KEY.start + 4..a::ID_KEY.end].fill(0),
            Fail("id_auth.format", "curve"),
        ),
        row(
            "ID_KEY QX ≥ p",
            |_, a| a[at(a::ID_KEY, pk::QX)].fill(0xff),
            Fail("id_auth.format", "curve"),
        ),
        row(
            "ID_KEY QX one bit off",
            |_, a| a[a::ID_KEY.start + pk::QX.start] ^= 1,
            Fail("id_auth.format", "curve"),
        ),
        row(
            "ID_KEY QX unused high byte",
            |_, a| a[a::ID_KEY.start + pk::QX.end] = 1,
            Fail("id_auth.format", "QX"),
        ),
        row(
            "ID_KEY QY unused high byte",
            |_, a| a[a::ID_KEY.start + pk::QY.end + 23] = 1,
            Fail("id_auth.format", "QY"),
        ),
        row(
            "AUTHOR_KEY reserved tail",
            |_, a| a[a::AUTHOR_KEY.end - 1] = 1,
            Fail("id_auth.format", "reserved after QY"),
        ),
        row(
            "ID_KEY negated (x, p - y): a valid point, not the signer",
            |_, a| {
                let y = a[at(a::ID_KEY, pk::QY)].to_vec();
                a[at(a::ID_KEY, pk::QY)].copy_from_slice(&sub_from(&p(), &y));
            },
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        // Signature components.
        row(
            "ID_BLOCK_SIG R zero",
            |_, a| a[at(a::ID_BLOCK_SIG, sig::R)].fill(0),
            Fail("id_auth.format", "R"),
        ),
        row(
            "ID_BLOCK_SIG S zero",
            |_, a| a[at(a::ID_BLOCK_SIG, sig::S)].fill(0),
            Fail("id_auth.format", "S"),
        ),
        row(
            "ID_BLOCK_SIG R = n",
            |_, a| a[at(a::ID_BLOCK_SIG, sig::R)].copy_from_slice(&n()),
            Fail("id_auth.format", "group order"),
        ),
        row(
            "ID_KEY_SIG S all ones",
            |_, a| a[at(a::ID_KEY_SIG, sig::S)].fill(0xff),
            Fail("id_auth.format", "group order"),
        ),
        row(
            "ID_BLOCK_SIG all zero",
            |_, a| a[a::ID_BLOCK_SIG].fill(0),
            Fail("id_auth.format", "ID_BLOCK_SIG"),
        ),
        row(
            "ID_BLOCK_SIG R unused high byte",
            |_, a| a[a::ID_BLOCK_SIG.start + sig::R.end] = 1,
            Fail("id_auth.format", "unused high bytes of R"),
        ),
        row(
            "ID_KEY_SIG reserved tail",
            |_, a| a[a::ID_KEY_SIG.end - 1] = 1,
            Fail("id_auth.format", "reserved after S"),
        ),
        row(
            "ID_BLOCK_SIG S one bit off",
            |_, a| a[a::ID_BLOCK_SIG.start + sig::S.start + 11] ^= 4,
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        row(
            // ECDSA has no low-S rule in the ABI: (r, n - s) verifies as well. Harmless: the
            // signed bytes and the reported key digests are the same.
            "ID_BLOCK_SIG S replaced by n - S",
            |_, a| {
                let s = a[at(a::ID_BLOCK_SIG, sig::S)].to_vec();
                a[at(a::ID_BLOCK_SIG, sig::S)].copy_from_slice(&sub_from(&n(), &s));
            },
            Pass,
        ),
        // Reserved ranges of the structure itself.
        row(
            "reserved after AUTHOR_KEY_ALGO",
            |_, a| a[0x20] = 0x80,
            Fail("id_auth.format", "AUTHOR_KEY_ALGO"),
        ),
        row(
            "reserved after ID_KEY",
            |_, a| a[0x67F] = 1,
            Fail("id_auth.format", "after ID_KEY"),
        ),
        row(
            "reserved after AUTHOR_KEY",
            |_, a| a[0xD00] = 1,
            Fail("id_auth.format", "after AUTHOR_KEY"),
        ),
        row(
            "all-ones ID auth",
            |_, a| a.fill(0xff),
            Fail("id_auth.format", "reserved"),
        ),
        row(
            "all-zero ID auth",
            |_, a| a.fill(0),
            Fail("id_auth.format", "ID_KEY_ALGO"),
        ),
        // The author part half there.
        row(
            "ID_KEY_SIG zeroed, AUTHOR_KEY kept",
            |_, a| a[a::ID_KEY_SIG].fill(0),
            Fail("id_auth.format", "ID_KEY_SIG"),
        ),
        row(
            "AUTHOR_KEY zeroed, ID_KEY_SIG kept",
            |_, a| a[a::AUTHOR_KEY].fill(0),
            Fail("id_auth.format", "AUTHOR_KEY"),
        ),
        plain(
            "author-key-enabled without an author key",
            true,
            |_, _| {},
            Fail("author_key.present", "author"),
        ),
        // Parts swapped or transplanted.
        row(
            "ID_BLOCK_SIG and ID_KEY_SIG swapped",
            |_, a| {
                let s1 = a[a::ID_BLOCK_SIG].to_vec();
                let s2 = a[a::ID_KEY_SIG].to_vec();
                a[a::ID_BLOCK_SIG].copy_from_slice(&s2);
                a[a::ID_KEY_SIG].copy_from_slice(&s1);
            },
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        row(
            "ID_KEY and AUTHOR_KEY swapped",
            |_, a| {
                let k1 = a[a::ID_KEY].to_vec();
                let k2 = a[a::AUTHOR_KEY].to_vec();
                a[a::ID_KEY].copy_from_slice(&k2);
                a[a::AUTHOR_KEY].copy_from_slice(&k1);
            },
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        row(
            "ID block signed by the author key instead",
            |b, a| {
                let other =
                    IdAuth::sign(&IdBlock::decode(b).unwrap(), &key(VIRTEE_AUTH_KEY)).encode();
                a[a::ID_BLOCK_SIG].copy_from_slice(&other[a::ID_BLOCK_SIG]);
            },
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        row(
            "ID key and signature of another signer, author part kept",
            |b, a| {
                let other =
                    IdAuth::sign(&IdBlock::decode(b).unwrap(), &key(MEASURE_ID_KEY)).encode();
                a[a::ID_BLOCK_SIG].copy_from_slice(&other[a::ID_BLOCK_SIG]);
                a[a::ID_KEY].copy_from_slice(&other[a::ID_KEY]);
            },
            Fail("id_key.signature", "ID_KEY_SIG"),
        ),
        row(
            "genuine ID auth of another image (other IMAGE_ID)",
            |b, _| b[0x40] ^= 0xff,
            Fail("id_block.signature", "ID_BLOCK_SIG"),
        ),
        row(
            "ID block and auth for another launch digest",
            |b, a| {
                let mut other = IdBlock::decode(b).unwrap();
                other.launch_digest = [0x42; 48];
                b.copy_from_slice(&other.encode());
                let auth = IdAuth::sign(&other, &key(VIRTEE_ID_KEY)).certify(&key(VIRTEE_AUTH_KEY));
                a.copy_from_slice(&auth.encode()[..]);
            },
            Fail("id_block.launch_digest", "launch digest"),
        ),
        row(
            "ID block and auth for another policy (SMT disallowed)",
            |b, a| {
                let mut other = IdBlock::decode(b).unwrap();
                other.policy = 0x20000;
                b.copy_from_slice(&other.encode());
                let auth = IdAuth::sign(&other, &key(VIRTEE_ID_KEY)).certify(&key(VIRTEE_AUTH_KEY));
                a.copy_from_slice(&auth.encode()[..]);
            },
            Fail("id_block.policy", "0x20000"),
        ),
    ];
    // A single flipped bit at a spread of offsets is always refused (none is ignored by the PSP
    // when the author key is enabled).
    for at in [
        0x000usize, 0x003, 0x040, 0x06F, 0x088, 0x240, 0x245, 0x28C, 0x680, 0x6C8, 0x880, 0x8CC,
        0xFFF,
    ] {
        rows.push(row(
            &format!("bit 0 flipped at {at:#05x}"),
            move |_, a| a[at] ^= 1,
            Fail("", ""),
        ));
    }
    rows
}

#[test]
fn hostile_inputs_are_refused_by_the_right_check() {
    let genuine = signed();
    let plain = signed_without_author();
    let rows = rows();
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let (b, a) = if r.with_author { &genuine } else { &plain };
        let (mut b, mut a) = (b.to_vec(), a.to_vec());
        (r.mutate)(&mut b, &mut a);
        let got = launch_finish(
            &IdInputs {
                id_block: &b,
                id_auth: &a,
                author_key_enabled: r.author_key_enabled,
            },
            &virtee_ld(),
            POLICY,
        );
        let ok = match (&r.expect, &got) {
            (Pass, Ok(_)) => true,
            (Fail("", ""), Err(_)) => true,
            (Fail(check, word), Err(e)) => {
                let text = format!(
                    "{e}: {}",
                    std::error::Error::source(e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                );
                e.check() == *check && text.contains(word)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: got {:?}",
                r.name,
                got.map_err(|e| (
                    e.check(),
                    e.to_string(),
                    std::error::Error::source(&e).map(|s| s.to_string())
                ))
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
