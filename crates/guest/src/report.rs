//! One report from the provider the probe found.

use crate::ioctl;
use crate::provider::Found;
use crate::{psp, tsm};
use anyhow::{Context, Result};
use snpkit_wire::certs::{CertEntry, parse_cert_table};
use snpkit_wire::frame::REPORT_LEN;
use std::time::Duration;

/// How long the emulated PSP may take to sign.
const PSP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Fetched {
    pub report: Box<[u8; REPORT_LEN]>,
    pub certs: Vec<CertEntry>,
}

pub fn fetch(found: &Found, report_data: &[u8; 64]) -> Result<Fetched> {
    match found {
        Found::ConfigfsTsm { entry } => {
            let (report, aux) = tsm::get_report(entry, report_data)?;
            tsm::close_entry(entry);
            let certs = parse_cert_table(&aux).context("configfs-tsm's auxblob")?;
            Ok(Fetched { report, certs })
        }
        Found::SevGuest { device } => {
            let dev = std::fs::File::open(device)
                .with_context(|| format!("opening {}", device.display()))?;
            match ioctl::get_ext_report(&dev, report_data, 0) {
                Ok((report, buf)) => {
                    let certs =
                        parse_cert_table(&buf).context("SNP_GET_EXT_REPORT's certificate table")?;
                    Ok(Fetched { report, certs })
                }
                Err(ext_err) => {
                    crate::console::say!("{ext_err}; trying SNP_GET_REPORT without certificates");
                    let report = ioctl::get_report(&dev, report_data, 0)?;
                    Ok(Fetched {
                        report,
                        certs: Vec::new(),
                    })
                }
            }
        }
        Found::EmulatedPsp { port } => {
            let response = psp::get_report(port, report_data, PSP_TIMEOUT)?;
            Ok(Fetched {
                report: response.report,
                certs: response.certs,
            })
        }
    }
}
