//! `cargo xtask sign`: the hello image signed with keys made by `keygen`; each config's ID block
//! vouches for its own predicted digest and policy and passes the PSP's LAUNCH_FINISH checks with
//! that digest only; signing again gives the same bytes; a stale prediction is never signed.

use crate::support::{Sandbox, fails, ok, xtask};
use snpkit_bundle::{Expected, ImageDir};
use snpkit_idblock::{IdBlock, IdInputs, LaunchFinishError, QemuIdArgs, keyfile, launch_finish};
use std::path::{Path, PathBuf};

pub const IDENTITY: &str = "\n[identity]\nfamily_id = \"5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11\"\nimage_id = \"00000000000000000000000000000007\"\nguest_svn = 3\n";

/// Adds `[identity]` to the sandbox's hello recipe (after its build: the lock pins the recipe's
/// text, and signing reads the table without building).
pub fn add_identity(sb: &Sandbox) {
    let file = sb.recipe_file("hello");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(IDENTITY);
    std::fs::write(&file, text).unwrap();
}

/// A new key from `cargo xtask keygen` in the sandbox; keygen writes its public key beside it as
/// `<name>.pub.pem`, the same it prints, and never writes over either file.
pub fn keygen(sb: &Sandbox, name: &str) -> PathBuf {
    let path = sb.dir.path().join(format!("{name}.pem"));
    let keygen = || {
        xtask()
            .args(["keygen", "--out", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = keygen();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8(out.stdout).unwrap();
    let begin = out
        .find("-----BEGIN PUBLIC KEY-----")
        .expect("keygen prints the public key");
    let public_pem = std::fs::read_to_string(public(&path)).unwrap();
    assert_eq!(public_pem, out[begin..]);
    let again = keygen();
    assert!(
        !again.status.success(),
        "keygen wrote over {}",
        path.display()
    );
    assert_eq!(std::fs::read_to_string(public(&path)).unwrap(), public_pem);
    path
}

fn public(key: &Path) -> PathBuf {
    key.with_extension("pub.pem")
}

fn digest_of(key: &Path) -> [u8; 48] {
    keyfile::read_signing_key(key)
        .unwrap()
        .public_key()
        .digest()
}

#[test]
fn sign_vouches_for_each_predicted_digest_and_refuses_stale_predictions() {
    let sb = Sandbox::with_recipe("hello");
    ok(&mut sb.xtask(&["build", "hello"]));
    let (id_key, author_key) = (keygen(&sb, "id"), keygen(&sb, "author"));
    let sign = |sb: &Sandbox| {
        sb.xtask(&[
            "sign",
            "hello",
            "--id-key",
            id_key.to_str().unwrap(),
            "--author-key",
            author_key.to_str().unwrap(),
        ])
    };

    let err = fails(&mut sign(&sb));
    assert!(err.contains("no [identity] table"), "{err}");
    add_identity(&sb);
    let out = String::from_utf8(ok(&mut sign(&sb)).stdout).unwrap();
    assert!(out.contains(&hex::encode(digest_of(&author_key))), "{out}");

    let image = ImageDir::new(&sb.images(), "hello");
    let expected = image.read_expected().unwrap();
    assert_eq!(expected.configs.len(), 2);
    let read_all = || {
        expected
            .configs
            .iter()
            .map(|c| {
                image
                    .read_id(&c.launch.name)
                    .unwrap()
                    .expect("a signed pair")
            })
            .collect::<Vec<_>>()
    };
    let first = read_all();
    for (config, files) in expected.configs.iter().zip(&first) {
        let block = IdBlock::decode(&files.block).unwrap();
        assert_eq!(hex::encode(block.launch_digest), config.measurement);
        assert_eq!(block.policy, config.launch.policy);
        assert_eq!(block.guest_svn, 3);
        assert_eq!(block.family_id[..4], [0x5e, 0x0d, 0x3a, 0xb4]);
        assert_eq!(block.image_id[15], 7);
        let args = QemuIdArgs::from_bytes(&files.block, &files.auth).unwrap();
        assert!(args.author_key_enabled());
        let identity =
            launch_finish(&args.inputs(), &block.launch_digest, config.launch.policy).unwrap();
        assert_eq!(identity.id_key_digest, digest_of(&id_key));
        assert_eq!(identity.author_key_digest, digest_of(&author_key));
        // Every other config's digest is refused: a block vouches for one launch only.
        for other in expected
            .configs
            .iter()
            .filter(|o| o.measurement != config.measurement)
        {
            let mut ld = [0u8; 48];
            hex::decode_to_slice(&other.measurement, &mut ld).unwrap();
            let inputs = IdInputs {
                id_block: &files.block,
                id_auth: &files.auth,
                author_key_enabled: true,
            };
            let err = launch_finish(&inputs, &ld, config.launch.policy).unwrap_err();
            assert!(
                matches!(err, LaunchFinishError::LaunchDigest { .. }),
                "{err}"
            );
        }
    }

    // RFC 6979: the same image signed again is the same bytes.
    ok(&mut sign(&sb));
    assert_eq!(read_all(), first);

    // A prediction that no longer matches the folder's files is not signed, and the old
    // signatures stay as they were.
    let mut stale: Expected = expected.clone();
    stale.configs[0].measurement = "00".repeat(48);
    std::fs::write(image.expected(), stale.to_json()).unwrap();
    let err = fails(&mut sign(&sb));
    assert!(err.contains("is stale"), "{err}");
    assert!(err.contains("qemu-1vcpu"), "{err}");
    assert!(err.contains("cargo xtask measure hello"), "{err}");
    assert_eq!(read_all(), first);
    ok(&mut sb.xtask(&["measure", "hello"]));
    ok(&mut sign(&sb));
    assert_eq!(read_all(), first);

    // A private key others can read is refused before anything is signed.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&id_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(&mut sign(&sb));
    assert!(err.contains("chmod 600"), "{err}");
}

/// Boots hello's `config` under the emulated launch with `extra` flags; its run.json and report.
fn boot(sb: &Sandbox, config: &str, extra: &[&str]) -> (String, serde_json::Value, Vec<u8>) {
    let _one = crate::boot::BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut args = vec![
        "boot", "hello", "--launch", "emulated", "--config", config, "--json",
    ];
    args.extend_from_slice(extra);
    let out = ok(&mut sb.xtask(&args));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = ImageDir::new(&sb.images(), "hello").runs();
    let newest = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains('.'))
        .max()
        .expect("a run folder");
    let report = std::fs::read(snpkit_bundle::RunDir::at(&newest).report()).unwrap();
    let id = newest.file_name().unwrap().to_string_lossy().into_owned();
    (id, record, report)
}

/// `boot` must refuse the launch before the guest runs, naming the LAUNCH_FINISH check.
fn refused_at_launch(sb: &Sandbox, config: &str, check: &str) {
    let err = fails(&mut sb.xtask(&["boot", "hello", "--launch", "emulated", "--config", config]));
    assert!(
        err.contains("EMULATED LAUNCH_FINISH refused the launch") && err.contains(check),
        "{err}"
    );
}

#[test]
fn a_signed_hello_boots_verifies_by_key_and_bad_blocks_are_refused_at_launch() {
    let sb = Sandbox::with_recipe("hello");
    ok(&mut sb.xtask(&["build", "hello"]));
    add_identity(&sb);
    let (id_key, author_key) = (keygen(&sb, "id"), keygen(&sb, "author"));
    ok(&mut sb.xtask(&[
        "sign",
        "hello",
        "--id-key",
        id_key.to_str().unwrap(),
        "--author-key",
        author_key.to_str().unwrap(),
    ]));
    let image = ImageDir::new(&sb.images(), "hello");

    // A signed launch: the report carries what the block and the launcher said.
    let host_data = "ab".repeat(32);
    let (run, record, report) = boot(&sb, "qemu-1vcpu", &["--host-data", &host_data]);
    let r = snpkit_attest::report::parse(&report).unwrap();
    assert_eq!(r.id_key_digest, digest_of(&id_key));
    assert_eq!(r.author_key_digest, digest_of(&author_key));
    assert_eq!(r.key_info & 1, 1, "KEY_INFO's AUTHOR_KEY_EN");
    assert_eq!(r.guest_svn, 3);
    assert_eq!(r.family_id[..4], [0x5e, 0x0d, 0x3a, 0xb4]);
    assert_eq!(r.image_id[15], 7);
    assert_eq!(hex::encode(r.host_data), host_data);
    assert_eq!(record["host_data"], host_data);
    assert_eq!(
        record["signed"]["id_key_digest"],
        hex::encode(digest_of(&id_key))
    );
    assert_eq!(
        record["signed"]["author_key_digest"],
        hex::encode(digest_of(&author_key))
    );

    // Verified by key, with no measurement given: the files of the run, not the image's
    // expected.json.
    let dir = image.runs().join(&run);
    let run_dir = snpkit_bundle::RunDir::at(&dir);
    let nonce = std::fs::read_to_string(run_dir.nonce()).unwrap();
    let verify = |extra: &[&str]| {
        let mut cmd = xtask();
        cmd.args(["verify", "--allow-emulated", "--json", "--report"])
            .arg(run_dir.report())
            .arg("--certs")
            .arg(run_dir.emulated_certs())
            .args(["--nonce", nonce.trim(), "--pubkey"])
            .arg(run_dir.pubkey())
            .args(extra);
        let out = crate::support::run(&mut cmd);
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), verdict)
    };
    let check = |v: &serde_json::Value, name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {v}"))
            .clone()
    };
    let (author_pub, id_pub) = (public(&author_key), public(&id_key));
    let by_author = [
        "--author-key",
        author_pub.to_str().unwrap(),
        "--family-id",
        "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11",
        "--min-guest-svn",
        "3",
        "--host-data",
        &host_data,
    ];
    let (passed, v) = verify(&by_author);
    assert!(passed, "{v}");
    let m = check(&v, "measurement");
    assert!(
        m["detail"]
            .as_str()
            .unwrap()
            .contains("passes by signature"),
        "{m}"
    );
    assert_eq!(check(&v, "author_key_digest")["passed"], true);
    let (passed, _) = verify(&["--id-key", id_pub.to_str().unwrap()]);
    assert!(passed);
    // Another author's key, a higher minimum SVN, or no key and no measurement: each fails, on
    // its own line.
    let other_host_data = "cd".repeat(32);
    let stranger = keygen(&sb, "stranger");
    let stranger_pub = public(&stranger);
    for (extra, failing) in [
        (
            vec!["--author-key", stranger_pub.to_str().unwrap()],
            "author_key_digest",
        ),
        (
            vec!["--id-key", stranger_pub.to_str().unwrap()],
            "id_key_digest",
        ),
        (
            vec![
                "--author-key",
                author_pub.to_str().unwrap(),
                "--min-guest-svn",
                "4",
            ],
            "guest_svn",
        ),
        (vec![], "measurement"),
        (
            vec![
                "--author-key",
                author_pub.to_str().unwrap(),
                "--host-data",
                &other_host_data,
            ],
            "host_data",
        ),
    ] {
        let (passed, v) = verify(&extra);
        assert!(!passed, "{extra:?} passed");
        assert_eq!(check(&v, failing)["passed"], false, "{extra:?}: {v}");
    }
    // A private key is not what a verifier is given.
    let (passed, v) = verify(&["--author-key", author_key.to_str().unwrap()]);
    assert!(!passed);
    assert!(v.to_string().contains("--author-key"), "{v}");

    let one = image.read_id("qemu-1vcpu").unwrap().unwrap();
    let four = image.read_id("qemu-4vcpu").unwrap().unwrap();
    let put = |block: &[u8], auth: &[u8]| {
        std::fs::write(image.id_block("qemu-1vcpu"), block).unwrap();
        std::fs::write(image.id_auth("qemu-1vcpu"), auth).unwrap();
    };
    // Signed for another config: another launch digest.
    put(&four.block, &four.auth);
    refused_at_launch(&sb, "qemu-1vcpu", "id_block.launch_digest");
    // One flipped byte of the ID block's signature (R's lowest byte: still a number below the
    // curve's order, so it is the signature check, not the decoder, that refuses it).
    let mut auth = one.auth.clone();
    auth[snpkit_idblock::layout::auth::ID_BLOCK_SIG.start] ^= 1;
    put(&one.block, &auth);
    refused_at_launch(&sb, "qemu-1vcpu", "id_block.signature");
    // Properly signed for this digest, but with a policy other than the launch's.
    let mut block = IdBlock::decode(&one.block).unwrap();
    block.policy = 0x20000;
    let signed = snpkit_idblock::IdAuth::sign(&block, &keyfile::read_signing_key(&id_key).unwrap());
    put(&block.encode(), &signed.encode()[..]);
    refused_at_launch(&sb, "qemu-1vcpu", "id_block.policy");
    put(&one.block, &one.auth);
}
