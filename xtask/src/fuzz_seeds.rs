//! The seed inputs of `cargo xtask fuzz`'s targets: vendored vectors read from `tests/vectors`, and
//! messages built with the crates' own encoders, so each target starts from well-formed bytes.

use anyhow::Context;
use std::path::Path;

pub(crate) fn read(rel: &str) -> anyhow::Result<Vec<u8>> {
    let p = crate::cli::vectors_dir().join(rel);
    std::fs::read(&p).with_context(|| {
        format!(
            "seed vector {} (set SNPKIT_VECTORS or restore tests/vectors)",
            p.display()
        )
    })
}

pub(crate) fn file_seeds(files: &[&str]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    files
        .iter()
        .map(|rel| {
            let name = Path::new(rel)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, read(rel)?))
        })
        .collect()
}

pub(crate) const OAK: &str = "project-oak-oak/derived/";
pub(crate) const TRUSTEE_SNP: &str = "confidential-containers-trustee/deps/verifier/test_data/snp/";
pub(crate) const MILAN_CRL: &str = "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der";

/// One of each JSON file of an image folder, as build, measure and boot write them.
pub(crate) fn bundle_seeds() -> Vec<(String, Vec<u8>)> {
    use snpkit_bundle::{
        Artifact, EXPECTED_SCHEMA, Expected, ExpectedConfig, ExpectedInput, HostData, ImageLayout,
        Input, InputKind, LaunchSpec, MANIFEST_SCHEMA, Manifest, RUN_SCHEMA, RunLaunch, RunRecord,
        RunSigned, Sha256Sum, VerityMetadata, files,
    };
    let launch = LaunchSpec {
        name: "qemu-1vcpu".into(),
        vcpus: 1,
        vcpu_type: "EPYC-v4".into(),
        vmm: "qemu".into(),
        guest_features: 1,
        policy: 0x30000,
        memory_mib: 512,
        // Set, so the seeds reach HOST_DATA's hex parser.
        host_data: Some(HostData([0x5a; 32])),
    };
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        recipe: "verity-hello".into(),
        layout: ImageLayout::Verity,
        source_date_epoch: 1_735_689_600,
        kernel_release: "6.12.95+deb12-cloud-amd64".into(),
        cmdline: "console=ttyS0 snpkit.verity=format=1".into(),
        artifacts: vec![Artifact::of(files::KERNEL, b"kernel")],
        inputs: vec![Input {
            kind: InputKind::Deb,
            name: "busybox-static".into(),
            version: Some("1:1.35.0-4+deb12u1+b1".into()),
            sha256: Sha256Sum::of(b"busybox"),
            size: 7,
        }],
        tools: [("snpkit".to_owned(), "0.1.0".to_owned())].into(),
        launch: vec![launch.clone()],
        verity: Some(VerityMetadata {
            check: "full".into(),
            data_block_size: 4096,
            data_blocks: 64,
            filesystem: "squashfs".into(),
            hash: "sha256".into(),
            hash_block_size: 4096,
            hash_start_block: 0,
            on_corruption: "panic".into(),
            root_hash: vec![0xab; 32],
            salt: vec![0x5a; 32],
        }),
        volumes: vec![snpkit_bundle::ManifestVolume {
            name: "data".into(),
            size_mib: 16,
            mount: "/var/lib/app".into(),
            kbs: Some("default/app/volume-key".into()),
        }],
        secrets: vec![snpkit_bundle::ManifestSecret {
            name: "token".into(),
            resource: "default/secret-hello/token".into(),
            path: "/run/secrets/token".into(),
        }],
        // Set, so the seeds reach the forwards' strict parser.
        network: Some(snpkit_bundle::ManifestNetwork {
            address: std::net::Ipv4Addr::new(10, 0, 2, 15),
            forward: vec!["tcp:8080:80".parse().expect("a valid forward")],
        }),
    };
    let expected = Expected {
        schema: EXPECTED_SCHEMA,
        recipe: "hello".into(),
        inputs: vec![ExpectedInput::of(Expected::INPUT_NAMES[3], b"console=hvc0")],
        configs: vec![ExpectedConfig {
            launch,
            measurement: "5a".repeat(48),
        }],
    };
    let run = RunRecord {
        schema: RUN_SCHEMA,
        recipe: "hello".into(),
        config: "qemu-1vcpu".into(),
        launch: RunLaunch::Emulated,
        emulated: Some(true),
        nonce: "11".repeat(32),
        pubkey: "22".repeat(32),
        entry: Some("exited with status 0".into()),
        provider: "EmulatedPsp".into(),
        measurement: Some("5a".repeat(48)),
        manifest_sha256: Some("33".repeat(32)),
        vcpus: Some(1),
        vcpu_type: Some("EPYC-v4".into()),
        boot_seconds: Some(9.5),
        host_data: Some("5a".repeat(32)),
        signed: Some(RunSigned {
            id_key_digest: "66".repeat(48),
            author_key_digest: Some("77".repeat(48)),
        }),
        stopped: Some(true),
        appliance_log: Some(snpkit_bundle::RunAppLog {
            bytes: 10,
            left_out: 0,
        }),
        broker: Some("http://127.0.0.1:8080".into()),
    };
    vec![
        ("manifest".into(), manifest.to_json().into_bytes()),
        ("expected".into(), expected.to_json().into_bytes()),
        ("run".into(), run.to_json().into_bytes()),
    ]
}

/// Frames of each kind the guest and host exchange, built around a genuine report and VCEK.
pub(crate) fn wire_seeds() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use snpkit_wire::certs::{CertEntry, GUID_VCEK};
    use snpkit_wire::frame::{
        self, AppLog, ErrorMessage, Evidence, LogStream, MAX_APPLOG_CHUNK, Message, Method, Nonce,
        RelayRequest, RelayResponse, ReportResponse,
    };
    let report: Box<[u8; 1184]> = read(&format!("{OAK}cb.report.bin"))?
        .into_boxed_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("oak cb report is not 1184 bytes"))?;
    let certs = vec![CertEntry {
        guid: GUID_VCEK,
        data: read(&format!("{OAK}cb.vcek.der"))?,
    }];
    let messages = [
        ("nonce", Message::Nonce(Nonce([7; 32]))),
        (
            "evidence",
            Message::Evidence(Evidence {
                report: report.clone(),
                public_key: [9; 32],
                certs: certs.clone(),
            }),
        ),
        (
            "report-response",
            Message::ReportResponse(ReportResponse { report, certs }),
        ),
        ("error", Message::Error(ErrorMessage("no provider".into()))),
        ("stop", Message::Stop),
        (
            "applog-line",
            Message::AppLog(AppLog {
                stream: LogStream::Stdout,
                bytes: b"web-hello: serving on port 8080\n".to_vec(),
            }),
        ),
        // The largest chunk, with the bytes a terminal would act on.
        (
            "applog-full-escapes",
            Message::AppLog(AppLog {
                stream: LogStream::Stderr,
                bytes: b"\x1b]0;title\x07\x1b[2J\r"
                    .iter()
                    .copied()
                    .cycle()
                    .take(MAX_APPLOG_CHUNK)
                    .collect(),
            }),
        ),
        // The guest's KBS exchanges as the host relays them (issue 11).
        (
            "relay-request",
            Message::RelayRequest(RelayRequest {
                method: Method::Post,
                path: "/kbs/v0/attest".into(),
                cookie: Some("kbs-session-id=5d6e0a2c-3b5f-4e0e-9a49-1e1b2f0c9d11".into()),
                body: br#"{"runtime-data":{"nonce":"bm9uY2U=","tee-pubkey":{}}}"#.to_vec(),
            }),
        ),
        (
            "relay-response",
            Message::RelayResponse(RelayResponse {
                status: 200,
                set_cookie: vec![
                    "kbs-session-id=5d6e0a2c-3b5f-4e0e-9a49-1e1b2f0c9d11; Path=/kbs; HttpOnly"
                        .into(),
                ],
                content_type: "application/json".into(),
                body: br#"{"nonce":"bm9uY2U=","extra-params":""}"#.to_vec(),
            }),
        ),
    ];
    messages
        .into_iter()
        .map(|(name, m)| {
            let bytes = frame::encode(&m).map_err(|e| anyhow::anyhow!("encoding {name}: {e}"))?;
            Ok((name.to_string(), bytes))
        })
        .collect()
}

/// The sealed-volume request and both answers, as the guest and the PSP send them.
pub(crate) fn msg_key_seeds() -> Vec<(String, Vec<u8>)> {
    use snpkit_wire::keyreq::{DerivedKey, KeyRequest, KeyResponse, KeySel, KeyStatus, RootKey};
    let request = KeyRequest {
        root: RootKey::Endorsement,
        key_sel: KeySel::Vcek,
        fields: snpkit_wire::volume::SEALED_FIELDS,
        vmpl: 0,
        guest_svn: 0,
        tcb_version: 0xdb18_0000_0000_0004,
    };
    vec![
        ("request".into(), request.encode().to_vec()),
        (
            "key".into(),
            KeyResponse::Key(DerivedKey([0x5a; 32])).encode().to_vec(),
        ),
        (
            "refused".into(),
            KeyResponse::Refused(KeyStatus::INVALID_PARAM)
                .encode()
                .to_vec(),
        ),
    ]
}

/// A sealed volume's header, and the dm-integrity superblock the kernel writes after it.
pub(crate) fn volume_header_seeds() -> Vec<(String, Vec<u8>)> {
    use snpkit_wire::keyreq::DerivedKey;
    use snpkit_wire::volume::{self, Header, SEALED_FIELDS};
    let keys = volume::volume_keys(&DerivedKey([3; 32]), "data", &volume::salt_for("data"));
    let header = Header::sealed("data", 0b010, 0, SEALED_FIELDS, 0x1000, 64 << 20, 120_000);
    let mut integrity = vec![0u8; 512];
    integrity[..8].copy_from_slice(b"integrt\0");
    integrity[8] = 5;
    integrity[10..12].copy_from_slice(&32u16.to_le_bytes());
    integrity[16..24].copy_from_slice(&120_000u64.to_le_bytes());
    integrity[28] = 3;
    vec![
        ("header".into(), header.encode(&keys)),
        ("integrity".into(), integrity),
    ]
}

/// `flags ‖ ID block ‖ ID auth` (fuzz_targets/idblock.rs): virtee/sev's signed pair (OpenSSL
/// signatures, tests/id-block.rs), and snpkit's own pairs with and without an author key.
pub(crate) fn idblock_seeds() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use snpkit_idblock::{IdAuth, IdBlock, SigningKey};
    const DIR: &str = "virtee-sev/tests/measurement/";
    let key = |name: &str| -> anyhow::Result<SigningKey> {
        SigningKey::from_key_bytes(&read(&format!("{DIR}{name}"))?)
            .map_err(|e| anyhow::anyhow!("{DIR}{name}: {e}"))
    };
    let (id, author) = (key("test_id_key.pem")?, key("test_auth_key.pem")?);
    // The launch digest virtee's test signs; FAMILY_ID, IMAGE_ID, GUEST_SVN zero, policy 0x30000.
    let mut launch_digest = [0u8; 48];
    hex::decode_to_slice(
        "a14d638341e5674628fe1e02fbedebe5e5ab4faf1dd72d8966068e615bb99efd13d214b35c231715b38e263dc6059745",
        &mut launch_digest,
    )?;
    let virtee = IdBlock {
        launch_digest,
        family_id: [0; 16],
        image_id: [0; 16],
        guest_svn: 0,
        policy: 0x30000,
    };
    let ours = IdBlock {
        family_id: *b"snpkit-family-01",
        image_id: *b"snpkit-image-002",
        guest_svn: 3,
        ..virtee
    };
    let seed = |flags: u8, block: &IdBlock, auth: &[u8]| {
        let mut v = vec![flags];
        v.extend(block.encode());
        v.extend(auth);
        v
    };
    let plain = IdAuth::sign(&ours, &id);
    Ok(vec![
        (
            "virtee-author".into(),
            seed(1, &virtee, &read(&format!("{DIR}test_auth_block.bin"))?),
        ),
        (
            "snpkit-author".into(),
            seed(1, &ours, &plain.certify(&author).encode()[..]),
        ),
        ("snpkit-plain".into(), seed(0, &ours, &plain.encode()[..])),
    ])
}
