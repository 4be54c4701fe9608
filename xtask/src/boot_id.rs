//! What `boot` gives a launch besides the image: the launch config's signed identity
//! (`id/<config>.id-block` and `.id-auth`, from `cargo xtask sign`) and HOST_DATA (`--host-data`,
//! else the config's `host_data`).
//!
//! On an SNP host both go to QEMU's `sev-snp-guest` and the real PSP checks the ID block at
//! LAUNCH_FINISH. Under the emulated launch the emulated PSP is handed the same bytes and runs the
//! same checks (`snpkit_idblock::launch_finish`) on the digest it computed from what QEMU was
//! given, before the guest starts: a block signed for another launch config, with another policy,
//! or with a broken signature refuses the launch, naming the check, as the PSP would. What it
//! accepts fills the report's ID_KEY_DIGEST, AUTHOR_KEY_DIGEST, FAMILY_ID, IMAGE_ID, GUEST_SVN,
//! KEY_INFO's author bit and HOST_DATA.

use anyhow::Context;
use snpkit_attest::emulated::ReportFields;
use snpkit_bundle::{HostData, ImageDir, LaunchSpec, RunSigned};
use snpkit_idblock::{QemuIdArgs, launch_finish};
use std::path::PathBuf;

/// The identity and HOST_DATA one launch is given.
pub struct Given {
    pub signed: Option<Signed>,
    pub host_data: Option<HostData>,
}

/// A launch config's pair of files, decoded strictly (signatures are LAUNCH_FINISH's to check).
pub struct Signed {
    pub block_path: PathBuf,
    pub args: QemuIdArgs,
}

/// Reads `id/<config>.*` when the image has them; `host_data` from the flag, else the config.
pub fn given(
    image: &ImageDir,
    config: &LaunchSpec,
    host_data: Option<HostData>,
) -> anyhow::Result<Given> {
    let signed = match image.read_id(&config.name)? {
        None => None,
        Some(files) => {
            let args = QemuIdArgs::from_bytes(&files.block, &files.auth).with_context(|| {
                format!(
                    "{} and {} cannot be handed to the launch; sign again with `cargo xtask sign {} --id-key FILE`, or remove both",
                    files.block_path.display(),
                    files.auth_path.display(),
                    image.recipe()
                )
            })?;
            Some(Signed {
                block_path: files.block_path,
                args,
            })
        }
    };
    Ok(Given {
        signed,
        host_data: host_data.or(config.host_data),
    })
}

impl Given {
    /// A line for people saying what the launch uses, or `None` when it uses neither.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(s) = &self.signed {
            parts.push(format!(
                "the ID block {} (ID key digest {}{})",
                s.block_path.display(),
                hex::encode(s.args.id_key_digest()),
                match s.args.author_key_digest() {
                    Some(d) => format!(", author key digest {}", hex::encode(d)),
                    None => String::new(),
                }
            ));
        }
        if let Some(h) = &self.host_data {
            parts.push(format!("HOST_DATA {h}"));
        }
        (!parts.is_empty()).then(|| format!("launching with {}", parts.join(" and ")))
    }

    /// QEMU's `sev-snp-guest` ID block values for an SNP launch.
    pub fn snp_id_block(&self) -> anyhow::Result<Option<snpkit_qemu::IdBlock>> {
        let Some(s) = &self.signed else {
            return Ok(None);
        };
        let inputs = s.args.inputs();
        Ok(Some(snpkit_qemu::IdBlock {
            block: Box::new(inputs.id_block.try_into().context("the ID block's size")?),
            auth: Box::new(inputs.id_auth.try_into().context("the ID auth's size")?),
            author_key: inputs.author_key_enabled,
        }))
    }

    /// The emulated PSP's LAUNCH_FINISH: refuses the launch as the PSP would, else fills the
    /// identity and HOST_DATA into the fields every report of this launch carries.
    pub fn emulated_finish(&self, fields: &mut ReportFields) -> anyhow::Result<()> {
        if let Some(h) = &self.host_data {
            fields.host_data = h.0;
        }
        let Some(identity) = self.finish(
            &fields.measurement,
            fields.policy,
            "EMULATED LAUNCH_FINISH refused the launch",
        )?
        else {
            return Ok(());
        };
        fields.family_id = identity.family_id;
        fields.image_id = identity.image_id;
        fields.guest_svn = identity.guest_svn;
        fields.id_key_digest = identity.id_key_digest;
        fields.author_key_digest = identity.author_key_digest;
        fields.author_key_en = identity.author_key_en;
        Ok(())
    }

    /// Before an SNP launch: the checks the PSP will make, on the config's predicted digest, so a
    /// block signed for another config, another policy or with a broken signature is named here
    /// rather than by QEMU's bare firmware error. (A prediction the PSP does not reproduce still
    /// fails at the PSP: only it knows the digest.)
    pub fn check_before_snp(&self, predicted: &[u8; 48], policy: u64) -> anyhow::Result<()> {
        self.finish(
            predicted,
            policy,
            "the PSP would refuse this launch at LAUNCH_FINISH, so it is not started",
        )
        .map(|_| ())
    }

    fn finish(
        &self,
        digest: &[u8; 48],
        policy: u64,
        refused: &str,
    ) -> anyhow::Result<Option<snpkit_idblock::LaunchIdentity>> {
        let Some(s) = &self.signed else {
            return Ok(None);
        };
        launch_finish(&s.args.inputs(), digest, policy)
            .map(Some)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{refused} (check {}): {e}\n  the ID block: {}",
                    e.check(),
                    s.block_path.display()
                )
            })
    }

    /// `run.json`'s `host_data` and `signed`.
    pub fn record(&self) -> (Option<String>, Option<RunSigned>) {
        (
            self.host_data.map(|h| h.to_hex()),
            self.signed.as_ref().map(|s| RunSigned {
                id_key_digest: hex::encode(s.args.id_key_digest()),
                author_key_digest: s.args.author_key_digest().map(hex::encode),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use snpkit_idblock::{IdAuth, IdBlock, SigningKey};

    fn signed_for(ld: [u8; 48], policy: u64) -> Given {
        let block = IdBlock {
            launch_digest: ld,
            family_id: [1; 16],
            image_id: [2; 16],
            guest_svn: 5,
            policy,
        };
        let auth = IdAuth::sign(&block, &SigningKey::generate()).certify(&SigningKey::generate());
        Given {
            signed: Some(Signed {
                block_path: "id/a.id-block".into(),
                args: QemuIdArgs::new(&block, &auth),
            }),
            host_data: Some(HostData([9; 32])),
        }
    }

    #[test]
    fn launch_finish_fills_the_report_or_names_the_check() {
        let given = signed_for([7; 48], 0x30000);
        let mut fields = ReportFields::new([7; 48], [0; 64], 0x30000);
        given.emulated_finish(&mut fields).unwrap();
        let signed = given.signed.as_ref().unwrap();
        assert_eq!(
            (fields.family_id, fields.image_id, fields.guest_svn),
            ([1; 16], [2; 16], 5)
        );
        assert_eq!(fields.id_key_digest, signed.args.id_key_digest());
        assert_eq!(
            Some(fields.author_key_digest),
            signed.args.author_key_digest()
        );
        assert!(fields.author_key_en);
        assert_eq!(fields.host_data, [9; 32]);
        given.check_before_snp(&[7; 48], 0x30000).unwrap();

        let mut other = ReportFields::new([8; 48], [0; 64], 0x30000);
        let err = given.emulated_finish(&mut other).unwrap_err().to_string();
        assert!(
            err.contains("EMULATED") && err.contains("id_block.launch_digest"),
            "{err}"
        );
        let err = given
            .check_before_snp(&[7; 48], 0x20000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PSP would refuse") && err.contains("id_block.policy"),
            "{err}"
        );

        // Unsigned: only HOST_DATA, and nothing to refuse.
        let plain = Given {
            signed: None,
            host_data: None,
        };
        let mut fields = ReportFields::new([7; 48], [0; 64], 0x30000);
        plain.emulated_finish(&mut fields).unwrap();
        assert_eq!(
            (fields.id_key_digest, fields.author_key_en),
            ([0; 48], false)
        );
        plain.check_before_snp(&[8; 48], 0).unwrap();
    }
}
