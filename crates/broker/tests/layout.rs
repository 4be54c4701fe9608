//! snpkit-kbs carries the report's offsets itself (the guest must not link the verifier); they
//! must be the verifier's (`snpkit_attest::report::layout`). Each field is set through the
//! verifier's offsets and must come out in the matching field of the evidence JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use snpkit_attest::report::layout as l;
use snpkit_kbs::evidence;

fn base() -> [u8; l::REPORT_LEN] {
    let mut r = [0u8; l::REPORT_LEN];
    r[l::VERSION..l::VERSION + 4].copy_from_slice(&5u32.to_le_bytes());
    r[l::CPUID_FAM_ID] = 0x19;
    r
}

#[test]
fn the_evidence_codec_uses_the_verifiers_offsets() {
    let ranges: [(&str, std::ops::Range<usize>); 11] = [
        ("family_id", l::FAMILY_ID),
        ("image_id", l::IMAGE_ID),
        ("report_data", l::REPORT_DATA),
        ("measurement", l::MEASUREMENT),
        ("host_data", l::HOST_DATA),
        ("id_key_digest", l::ID_KEY_DIGEST),
        ("author_key_digest", l::AUTHOR_KEY_DIGEST),
        ("report_id", l::REPORT_ID),
        ("report_id_ma", l::REPORT_ID_MA),
        ("chip_id", l::CHIP_ID),
        ("signature", l::SIG_R.start..l::SIG_R.start + 1),
    ];
    for (name, range) in ranges {
        let mut r = base();
        for (i, b) in r[range.clone()].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let e = serde_json::to_value(evidence::encode(&r, &[]).expect(name).attestation_report)
            .unwrap();
        let field = if name == "signature" {
            &e["signature"]["r"]
        } else {
            &e[name]
        };
        let got: Vec<u8> = field
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(&got[..range.len()], &r[range.clone()], "{name}");
    }
    let scalars: [(&str, usize, usize); 9] = [
        ("guest_svn", l::GUEST_SVN, 4),
        ("policy", l::POLICY, 8),
        ("vmpl", l::VMPL, 4),
        ("sig_algo", l::SIGNATURE_ALGO, 4),
        ("plat_info", l::PLATFORM_INFO, 8),
        ("key_info", l::KEY_INFO, 4),
        ("launch_mit_vector", l::LAUNCH_MIT_VECTOR, 8),
        ("current_mit_vector", l::CURRENT_MIT_VECTOR, 8),
        ("cpuid_mod_id", l::CPUID_MOD_ID, 1),
    ];
    for (name, at, len) in scalars {
        let mut r = base();
        r[at] = 0x5A;
        if len > 1 {
            r[at + len - 1] = 0x01;
        }
        let e = serde_json::to_value(evidence::encode(&r, &[]).expect(name).attestation_report)
            .unwrap();
        let mut want = [0u8; 8];
        want[..len].copy_from_slice(&r[at..at + len]);
        assert_eq!(e[name].as_u64(), Some(u64::from_le_bytes(want)), "{name}");
    }
    let tcbs = [
        ("current_tcb", l::CURRENT_TCB),
        ("reported_tcb", l::REPORTED_TCB),
        ("committed_tcb", l::COMMITTED_TCB),
        ("launch_tcb", l::LAUNCH_TCB),
    ];
    for (name, at) in tcbs {
        let mut r = base();
        r[at..at + 8].copy_from_slice(&[1, 2, 0, 0, 0, 0, 3, 4]);
        let e = serde_json::to_value(evidence::encode(&r, &[]).expect(name).attestation_report)
            .unwrap();
        assert_eq!(
            e[name],
            serde_json::json!({"fmc": null, "bootloader": 1, "tee": 2, "snp": 3, "microcode": 4}),
            "{name}"
        );
    }
    let mut r = base();
    r[l::CURRENT_BUILD] = 21;
    r[l::CURRENT_MINOR] = 55;
    r[l::CURRENT_MAJOR] = 1;
    r[l::COMMITTED_MAJOR] = 2;
    r[l::CPUID_STEP] = 7;
    let e = serde_json::to_value(evidence::encode(&r, &[]).unwrap().attestation_report).unwrap();
    assert_eq!(
        e["current"],
        serde_json::json!({"major": 1, "minor": 55, "build": 21})
    );
    assert_eq!(e["committed"]["major"], 2);
    assert_eq!(e["cpuid_step"], 7);
    assert_eq!(l::REPORT_LEN, snpkit_wire::frame::REPORT_LEN);
}
