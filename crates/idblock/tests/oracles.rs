//! Independent implementations as oracles, from the pinned venv `cargo xtask oracles` installs
//! (sev-snp-measure 0.0.13 and Python's `cryptography`):
//! - blocks made by sev-snp-measure's `snp-create-id-block` pass our LAUNCH_FINISH check, with
//!   the key digests that tool prints, and equal ours but for the (randomised) signature values;
//! - our blocks verify with `cryptography` over the ABI layout written out again in
//!   `oracle_idblock.py`, and our signatures equal OpenSSL's RFC 6979 deterministic ones.
//!
//! Needs `SNPKIT_SEV_SNP_MEASURE` (set by `cargo xtask test`; install with `cargo xtask oracles`):
//! `snp-create-id-block` and the venv's `python3` are beside it. Without it the tests fail, saying
//! so.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use snpkit_idblock::layout::{auth, signature};
use snpkit_idblock::{IdAuth, IdBlock, IdInputs, SigningKey, launch_finish};
use std::path::{Path, PathBuf};
use std::process::Command;

fn venv_bin(tool: &str) -> PathBuf {
    let measure = std::env::var_os("SNPKIT_SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = measure
        .parent()
        .map(|dir| dir.join(tool))
        .unwrap_or_default();
    assert!(
        measure.is_file() && path.is_file(),
        "{tool} not found beside sev-snp-measure 0.0.13 (SNPKIT_SEV_SNP_MEASURE={measure:?}): run \
         `cargo xtask oracles` and set SNPKIT_SEV_SNP_MEASURE to the path it prints (`cargo xtask \
         test` does both)"
    );
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The key pairs both tools can read: virtee's PKCS#8 files and sev-snp-measure's SEC1 files.
const KEY_PAIRS: [(&str, &str); 2] = [
    (VIRTEE_ID_KEY, VIRTEE_AUTH_KEY),
    (MEASURE_ID_KEY, MEASURE_AUTHOR_KEY),
];

fn lds() -> Vec<[u8; 48]> {
    let mut ld3 = [0u8; 48];
    for (i, b) in ld3.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    vec![virtee_ld(), [0xff; 48], ld3]
}

struct Created {
    block: Vec<u8>,
    auth: Vec<u8>,
    id_key_hash: Vec<u8>,
    author_key_hash: Vec<u8>,
}

/// `snp-create-id-block` prints `id-block=B64,id-auth=B64`, `id_key_hash: B64`,
/// `author_key: B64` (the author key's digest).
fn create_id_block(ld: &[u8; 48], id_key: &Path, author_key: &Path) -> Created {
    let out = run(Command::new(venv_bin("snp-create-id-block"))
        .arg("--measurement")
        .arg(B64.encode(ld))
        .arg("--idkey")
        .arg(id_key)
        .arg("--authorkey")
        .arg(author_key));
    let field = |prefix: &str| -> Vec<u8> {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out:?}"));
        B64.decode(line.trim()).unwrap()
    };
    let first = out.lines().next().unwrap();
    let (block, auth) = first
        .strip_prefix("id-block=")
        .and_then(|rest| rest.split_once(",id-auth="))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    Created {
        block: B64.decode(block).unwrap(),
        auth: B64.decode(auth.trim()).unwrap(),
        id_key_hash: field("id_key_hash: "),
        author_key_hash: field("author_key: "),
    }
}

fn without_signature_values(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    for sig in [auth::ID_BLOCK_SIG, auth::ID_KEY_SIG] {
        v[sig.start + signature::R.start..sig.start + signature::R.end].fill(0);
        v[sig.start + signature::S.start..sig.start + signature::S.end].fill(0);
    }
    v
}

#[test]
fn sev_snp_measure_blocks_pass_our_launch_finish() {
    let vectors = vectors_dir();
    let mut checked = 0;
    for (id, author) in KEY_PAIRS {
        for ld in lds() {
            let theirs = create_id_block(&ld, &vectors.join(id), &vectors.join(author));
            let inputs = IdInputs {
                id_block: &theirs.block,
                id_auth: &theirs.auth,
                author_key_enabled: true,
            };
            let identity = launch_finish(&inputs, &ld, POLICY)
                .unwrap_or_else(|e| panic!("{id} / {}: {e}", hex::encode(ld)));
            assert_eq!(identity.id_key_digest.to_vec(), theirs.id_key_hash);
            assert_eq!(identity.author_key_digest.to_vec(), theirs.author_key_hash);
            assert!(identity.author_key_en);
            // Its defaults: FAMILY_ID, IMAGE_ID and GUEST_SVN zero.
            assert_eq!(
                (identity.family_id, identity.image_id, identity.guest_svn),
                ([0; 16], [0; 16], 0)
            );
            // The same launch refused for another digest: the check is live on their bytes too.
            let mut other = ld;
            other[0] ^= 1;
            assert_eq!(
                launch_finish(&inputs, &other, POLICY).unwrap_err().check(),
                "id_block.launch_digest"
            );

            // Ours for the same inputs: the same bytes but for the signature values.
            let block = IdBlock {
                launch_digest: ld,
                family_id: [0; 16],
                image_id: [0; 16],
                guest_svn: 0,
                policy: POLICY,
            };
            assert_eq!(&block.encode()[..], &theirs.block[..]);
            let ours = IdAuth::sign(&block, &key(id))
                .certify(&key(author))
                .encode();
            assert_eq!(
                without_signature_values(&ours[..]),
                without_signature_values(&theirs.auth)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

#[derive(serde::Deserialize)]
struct Oracle {
    cryptography: String,
    block_len: usize,
    auth_len: usize,
    ld: String,
    family_id: String,
    image_id: String,
    version: u32,
    guest_svn: u32,
    policy: u64,
    id_key_algo: u32,
    author_key_algo: u32,
    reserved_zero: bool,
    id_key_is_the_pem_key: bool,
    id_block_sig_tail_zero: bool,
    id_block_sig_verifies: bool,
    id_block_sig_is_rfc6979: bool,
    id_key_digest: String,
    author_part_zero: Option<bool>,
    author_key_is_the_pem_key: Option<bool>,
    id_key_sig_tail_zero: Option<bool>,
    id_key_sig_verifies: Option<bool>,
    id_key_sig_is_rfc6979: Option<bool>,
    author_key_digest: Option<String>,
}

fn oracle(block: &[u8], auth: &[u8], id_key: &Path, author_key: Option<&Path>) -> Oracle {
    let dir = tempfile::tempdir().unwrap();
    let (b, a) = (dir.path().join("block"), dir.path().join("auth"));
    std::fs::write(&b, block).unwrap();
    std::fs::write(&a, auth).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_idblock.py");
    let mut cmd = Command::new(venv_bin("python3"));
    cmd.arg(script).arg(&b).arg(&a).arg(id_key);
    if let Some(author) = author_key {
        cmd.arg(author);
    }
    serde_json::from_str(&run(&mut cmd)).unwrap()
}

#[test]
fn python_cryptography_verifies_and_reproduces_our_signatures() {
    let vectors = vectors_dir();
    let generated = tempfile::tempdir().unwrap();
    let fresh_id = generated.path().join("id.pem");
    let fresh_author = generated.path().join("author.pem");
    snpkit_idblock::keyfile::write_new_signing_key(&fresh_id, &SigningKey::generate()).unwrap();
    snpkit_idblock::keyfile::write_new_signing_key(&fresh_author, &SigningKey::generate()).unwrap();
    let pairs: Vec<(PathBuf, PathBuf)> = KEY_PAIRS
        .iter()
        .map(|(i, a)| (vectors.join(i), vectors.join(a)))
        .chain([(fresh_id, fresh_author)])
        .collect();
    let block = block();
    for (id_path, author_path) in &pairs {
        let id = SigningKey::from_key_bytes(&std::fs::read(id_path).unwrap()).unwrap();
        let author = SigningKey::from_key_bytes(&std::fs::read(author_path).unwrap()).unwrap();
        for with_author in [false, true] {
            let mut auth = IdAuth::sign(&block, &id);
            if with_author {
                auth = auth.certify(&author);
            }
            let (b, a) = (block.encode(), auth.encode());
            let o = oracle(
                &b,
                &a[..],
                id_path,
                with_author.then_some(author_path.as_path()),
            );
            let what = format!("{} with_author={with_author}", id_path.display());
            eprintln!("cryptography {} checks {what}", o.cryptography);
            assert_eq!((o.block_len, o.auth_len), (96, 4096), "{what}");
            assert_eq!(o.ld, hex::encode(block.launch_digest), "{what}");
            assert_eq!(o.family_id, hex::encode(block.family_id), "{what}");
            assert_eq!(o.image_id, hex::encode(block.image_id), "{what}");
            assert_eq!((o.version, o.guest_svn, o.policy), (1, 3, POLICY), "{what}");
            assert_eq!(o.id_key_algo, 1, "{what}");
            assert_eq!(o.author_key_algo, u32::from(with_author), "{what}");
            assert!(o.reserved_zero && o.id_key_is_the_pem_key, "{what}");
            assert!(
                o.id_block_sig_tail_zero && o.id_block_sig_verifies,
                "{what}"
            );
            assert!(
                o.id_block_sig_is_rfc6979,
                "{what}: not OpenSSL's RFC 6979 signature"
            );
            assert_eq!(
                o.id_key_digest,
                hex::encode(id.public_key().digest()),
                "{what}"
            );
            if with_author {
                assert_eq!(o.author_key_is_the_pem_key, Some(true), "{what}");
                assert_eq!(o.id_key_sig_tail_zero, Some(true), "{what}");
                assert_eq!(o.id_key_sig_verifies, Some(true), "{what}");
                assert_eq!(o.id_key_sig_is_rfc6979, Some(true), "{what}");
                assert_eq!(
                    o.author_key_digest,
                    Some(hex::encode(author.public_key().digest())),
                    "{what}"
                );
            } else {
                assert_eq!(o.author_part_zero, Some(true), "{what}");
            }
        }
    }
}

#[test]
fn python_cryptography_refuses_a_tampered_block() {
    // The oracle can fail: one flipped bit in our signature and it says so.
    let vectors = vectors_dir();
    let (b, mut a) = signed();
    a[auth::ID_BLOCK_SIG.start + 3] ^= 0x10;
    let o = oracle(
        &b,
        &a[..],
        &vectors.join(VIRTEE_ID_KEY),
        Some(&vectors.join(VIRTEE_AUTH_KEY)),
    );
    assert!(!o.id_block_sig_verifies && !o.id_block_sig_is_rfc6979);
    assert_eq!(o.id_key_sig_verifies, Some(true));
}
