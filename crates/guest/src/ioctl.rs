//! `/dev/sev-guest`: SNP_GET_EXT_REPORT and SNP_GET_REPORT (`include/uapi/linux/sev-guest.h`).
//!
//! The only unsafe code of the guest. Written here rather than taken from the `sev` crate's
//! `firmware::guest`: that module is sound, but it brings `uuid`, `dirs`, `bitfield`, `lazy_static`
//! and more into a static PID 1 that needs two ioctls, it hard-codes `/dev/sev-guest` (our probe
//! takes a root directory), and it parses the certificate table through a raw pointer. Here the
//! kernel structs are `#[repr(C)]` copies whose sizes are tested, the ioctl wrappers come from
//! nix, and the certificate buffer is parsed as bytes by `snpkit_wire::certs`.

use snpkit_wire::report::{
    REPORT_LEN, RESPONSE_LEN, RESPONSE_REPORT, RESPONSE_REPORT_SIZE, RESPONSE_STATUS,
};
use std::fs::File;
use std::os::fd::AsRawFd;

/// `struct snp_report_req`.
#[repr(C)]
pub struct SnpReportReq {
    pub user_data: [u8; 64],
    pub vmpl: u32,
    pub rsvd: [u8; 28],
}

/// `struct snp_report_resp`: the firmware's MSG_REPORT_RSP (SNP ABI spec, table "MSG_REPORT_RSP
/// Message Structure"): `status: u32`, `report_size: u32`, 24 reserved bytes, then the report
/// (offsets in `snpkit_wire::report`).
#[repr(C)]
pub struct SnpReportResp {
    pub data: [u8; RESPONSE_LEN],
}

/// `struct snp_ext_report_req`.
#[repr(C)]
pub struct SnpExtReportReq {
    pub data: SnpReportReq,
    pub certs_address: u64,
    pub certs_len: u32,
}

/// `struct snp_guest_request_ioctl`; `exitinfo2` is the union of `{ fw_error: u32, vmm_error: u32 }`.
#[repr(C)]
pub struct SnpGuestRequestIoctl {
    pub msg_version: u8,
    pub req_data: u64,
    pub resp_data: u64,
    pub exitinfo2: u64,
}

const SNP_GUEST_REQ_IOC_TYPE: u8 = b'S';
nix::ioctl_readwrite!(
    snp_get_report,
    SNP_GUEST_REQ_IOC_TYPE,
    0x0,
    SnpGuestRequestIoctl
);
nix::ioctl_readwrite!(
    snp_get_ext_report,
    SNP_GUEST_REQ_IOC_TYPE,
    0x2,
    SnpGuestRequestIoctl
);

/// SNP_GUEST_VMM_ERR_INVALID_LEN: the certificate buffer was too small (`certs_len` now says how big).
pub const VMM_ERR_INVALID_LEN: u32 = 1;
/// Certificate buffer: the kernel refuses more than SEV_FW_BLOB_MAX_SIZE (16 KiB), and wants whole pages.
pub const CERTS_BUF_LEN: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IoctlError {
    #[error("{ioctl} failed: {errno} (firmware error {fw_error:#x}, VMM error {vmm_error:#x})")]
    Failed {
        ioctl: &'static str,
        errno: nix::errno::Errno,
        fw_error: u32,
        vmm_error: u32,
    },
    #[error(
        "the host's certificates need {needed} bytes; the kernel allows at most {CERTS_BUF_LEN}"
    )]
    CertsTooLarge { needed: u32 },
    #[error("the firmware answered status {status:#x}")]
    Status { status: u32 },
    #[error("the firmware's report is {found} bytes, expected {REPORT_LEN}")]
    ReportSize { found: u32 },
}

fn split_exitinfo2(exitinfo2: u64) -> (u32, u32) {
    (exitinfo2 as u32, (exitinfo2 >> 32) as u32)
}

/// Checks MSG_REPORT_RSP and returns the report.
pub fn report_from_response(
    resp: &[u8; RESPONSE_LEN],
) -> Result<Box<[u8; REPORT_LEN]>, IoctlError> {
    let word = |at: std::ops::Range<usize>| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&resp[at]);
        u32::from_le_bytes(w)
    };
    let status = word(RESPONSE_STATUS);
    if status != 0 {
        return Err(IoctlError::Status { status });
    }
    let size = word(RESPONSE_REPORT_SIZE);
    if size as usize != REPORT_LEN {
        return Err(IoctlError::ReportSize { found: size });
    }
    let mut report = Box::new([0u8; REPORT_LEN]);
    report.copy_from_slice(&resp[RESPONSE_REPORT]);
    Ok(report)
}

fn request(user_data: &[u8; 64], vmpl: u32) -> SnpReportReq {
    SnpReportReq {
        user_data: *user_data,
        vmpl,
        rsvd: [0; 28],
    }
}

/// SNP_GET_REPORT.
pub fn get_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
) -> Result<Box<[u8; REPORT_LEN]>, IoctlError> {
    let mut req = request(user_data, vmpl);
    let mut resp = Box::new(SnpReportResp {
        data: [0; RESPONSE_LEN],
    });
    let mut guest_req = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: &raw mut req as u64,
        resp_data: &raw mut *resp as u64,
        exitinfo2: 0,
    };
    // SAFETY: `guest_req` points at `req` and `resp`, which live (and are not moved) until the
    // ioctl returns; the kernel reads exactly `snp_report_req` and writes exactly
    // `snp_report_resp`, whose layouts these structs reproduce (sizes tested below).
    #[allow(unsafe_code)]
    let result = unsafe { snp_get_report(dev.as_raw_fd(), &mut guest_req) };
    if let Err(errno) = result {
        let (fw_error, vmm_error) = split_exitinfo2(guest_req.exitinfo2);
        return Err(IoctlError::Failed {
            ioctl: "SNP_GET_REPORT",
            errno,
            fw_error,
            vmm_error,
        });
    }
    report_from_response(&resp.data)
}

/// SNP_GET_EXT_REPORT: the report and the host's certificate buffer (a GUID table).
pub fn get_ext_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
) -> Result<(Box<[u8; REPORT_LEN]>, Vec<u8>), IoctlError> {
    let mut certs = vec![0u8; CERTS_BUF_LEN];
    let mut req = SnpExtReportReq {
        data: request(user_data, vmpl),
        certs_address: certs.as_mut_ptr() as u64,
        certs_len: CERTS_BUF_LEN as u32,
    };
    let mut resp = Box::new(SnpReportResp {
        data: [0; RESPONSE_LEN],
    });
    let mut guest_req = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: &raw mut req as u64,
        resp_data: &raw mut *resp as u64,
        exitinfo2: 0,
    };
    // SAFETY: as in `get_report`; in addition `certs_address`/`certs_len` describe `certs`, a live
    // heap buffer of exactly `certs_len` bytes that is not touched until the ioctl returns.
    #[allow(unsafe_code)]
    let result = unsafe { snp_get_ext_report(dev.as_raw_fd(), &mut guest_req) };
    if let Err(errno) = result {
        let (fw_error, vmm_error) = split_exitinfo2(guest_req.exitinfo2);
        if vmm_error == VMM_ERR_INVALID_LEN {
            return Err(IoctlError::CertsTooLarge {
                needed: req.certs_len,
            });
        }
        return Err(IoctlError::Failed {
            ioctl: "SNP_GET_EXT_REPORT",
            errno,
            fw_error,
            vmm_error,
        });
    }
    let report = report_from_response(&resp.data)?;
    Ok((report, certs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, size_of};

    #[test]
    fn struct_layouts_match_the_kernel_uapi() {
        assert_eq!(size_of::<SnpReportReq>(), 96);
        assert_eq!(size_of::<SnpReportResp>(), 4000);
        assert_eq!(size_of::<SnpGuestRequestIoctl>(), 32);
        assert_eq!(size_of::<SnpExtReportReq>(), 112);
        assert_eq!(std::mem::offset_of!(SnpExtReportReq, certs_address), 96);
        assert_eq!(std::mem::offset_of!(SnpExtReportReq, certs_len), 104);
        assert_eq!(std::mem::offset_of!(SnpGuestRequestIoctl, req_data), 8);
        assert_eq!(std::mem::offset_of!(SnpGuestRequestIoctl, exitinfo2), 24);
        assert_eq!(align_of::<SnpGuestRequestIoctl>(), 8);
    }

    #[test]
    fn ioctl_numbers_are_iowr_s() {
        // _IOWR('S', n, struct snp_guest_request_ioctl) with a 32-byte struct.
        let size = size_of::<SnpGuestRequestIoctl>();
        assert_eq!(
            nix::request_code_readwrite!(b'S', 0x0, size) as u64,
            0xc020_5300
        );
        assert_eq!(
            nix::request_code_readwrite!(b'S', 0x2, size) as u64,
            0xc020_5302
        );
    }

    #[test]
    fn response_status_and_size_are_checked() {
        let mut resp = [0u8; 4000];
        resp[4..8].copy_from_slice(&1184u32.to_le_bytes());
        resp[32] = 0xaa;
        resp[32 + 1183] = 0xbb;
        let report = report_from_response(&resp).expect("valid response");
        assert_eq!((report[0], report[1183]), (0xaa, 0xbb));
        resp[0] = 0x16;
        assert!(matches!(
            report_from_response(&resp),
            Err(IoctlError::Status { status: 0x16 })
        ));
        resp[0] = 0;
        resp[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            report_from_response(&resp),
            Err(IoctlError::ReportSize { found: 1000 })
        ));
    }

    #[test]
    fn exitinfo2_splits_into_firmware_and_vmm_errors() {
        assert_eq!(split_exitinfo2(0x0000_0001_0000_0016), (0x16, 1));
    }
}
