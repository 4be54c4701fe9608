//! The emulated PSP's answer to a guest's report request, as the guest's provider receives it from
//! a real PSP's extended request: the signed report and the certificate table.

use super::chain::TestChain;
use super::report::{ReportFields, emulated_report};
use snpkit_wire::certs::{CertEntry, GUID_ARK, GUID_ASK, GUID_VCEK};
use snpkit_wire::frame::{ReportRequest, ReportResponse};

/// Answers `request`: `fields` with the request's REPORT_DATA and VMPL (the two values a guest
/// chooses), signed by the test VCEK, and the test chain's certificates.
pub fn answer(chain: &TestChain, fields: &ReportFields, request: &ReportRequest) -> ReportResponse {
    let mut signed = fields.clone();
    signed.report_data = request.report_data;
    signed.vmpl = request.vmpl;
    ReportResponse {
        report: Box::new(emulated_report(chain, &signed)),
        certs: certificate_table(chain),
    }
}

/// The test chain as an extended report request returns certificates: ARK, ASK, VCEK by GUID.
pub fn certificate_table(chain: &TestChain) -> Vec<CertEntry> {
    vec![
        CertEntry {
            guid: GUID_ARK,
            data: chain.roots.ark.der().to_vec(),
        },
        CertEntry {
            guid: GUID_ASK,
            data: chain.roots.ask.der().to_vec(),
        },
        CertEntry {
            guid: GUID_VCEK,
            data: chain.vcek.der().to_vec(),
        },
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::emulated::ChainNames;
    use crate::report::layout::{MEASUREMENT, POLICY, REPORT_DATA, VMPL};

    #[test]
    fn the_answer_carries_what_the_guest_chose_and_what_the_launch_was() {
        let chain = TestChain::forge(&ChainNames::emulated()).unwrap();
        let mut fields = ReportFields::new([0x11; 48], [0; 64], 0x30000);
        fields.report_data = [0xEE; 64];
        let request = ReportRequest {
            report_data: [0x42; 64],
            vmpl: 2,
        };
        let r = answer(&chain, &fields, &request);
        assert_eq!(&r.report[REPORT_DATA], &[0x42; 64][..]);
        assert_eq!(&r.report[VMPL..VMPL + 4], &2u32.to_le_bytes());
        assert_eq!(&r.report[MEASUREMENT], &[0x11; 48][..]);
        assert_eq!(&r.report[POLICY..POLICY + 8], &0x30000u64.to_le_bytes());
        let guids: Vec<_> = r.certs.iter().map(|c| c.guid).collect();
        assert_eq!(guids, [GUID_ARK, GUID_ASK, GUID_VCEK]);
        assert_eq!(r.certs[2].data, chain.vcek.der());
        assert_eq!(r.certs[0].data, chain.roots.ark.der());
    }
}
