//! The emulated PSP's port: SNP_GET_REPORT as a frame exchange with the host. Emulated launches
//! only; the report it returns is signed by the host's test chain, which no verifier accepts as
//! AMD's unless told to.

use crate::timed::TimedPort;
use anyhow::{Context, Result, bail};
use snpkit_wire::frame::{self, Message, ReportRequest, ReportResponse};
use std::path::Path;
use std::time::Duration;

pub fn get_report(
    port: &Path,
    report_data: &[u8; 64],
    timeout: Duration,
) -> Result<ReportResponse> {
    let mut port = TimedPort::open(port, timeout)?;
    let request = Message::ReportRequest(ReportRequest {
        report_data: *report_data,
        vmpl: 0,
    });
    frame::write_message(&mut port, &request)
        .context("sending the report request to the emulated PSP")?;
    match frame::read_message(&mut port).context("reading the emulated PSP's answer")? {
        Message::ReportResponse(response) => Ok(response),
        Message::Error(e) => bail!("the emulated PSP refused: {}", e.0),
        other => bail!(
            "the emulated PSP sent {:?} instead of a report",
            other.kind()
        ),
    }
}
