//! `/etc/snpkit/init.json`, read from the initramfs (measured through the initrd hash).

use anyhow::{Context, Result, bail};
use snpkit_wire::init::{INIT_SCHEMA, InitConfig};
use std::path::Path;

/// The init config is a few hundred bytes; this bound only keeps a broken image from filling RAM.
const MAX_CONFIG: u64 = 1 << 20;

pub fn load(path: &Path) -> Result<InitConfig> {
    let bytes = snpkit_fsguard::read(path, "the init config", MAX_CONFIG)?;
    parse(&bytes).with_context(|| format!("in {}", path.display()))
}

pub fn parse(bytes: &[u8]) -> Result<InitConfig> {
    let config: InitConfig = serde_json::from_slice(bytes).context("not a valid init config")?;
    if config.schema != INIT_SCHEMA {
        bail!(
            "schema {} is not the one this /init reads ({INIT_SCHEMA}); rebuild the image",
            config.schema
        );
    }
    match config.entry.argv.first() {
        None => bail!("entry.argv is empty"),
        Some(program) if !program.starts_with('/') => {
            bail!("entry.argv[0] {program:?} is not an absolute path")
        }
        Some(_) => {}
    }
    if let Some(module) = config.modules.iter().find(|m| !m.starts_with('/')) {
        bail!("module {module:?} is not an absolute path");
    }
    if let Some(net) = &config.network
        && !(1..=30).contains(&net.prefix)
    {
        bail!("network prefix /{} is not 1 to 30", net.prefix);
    }
    for secret in &config.secrets {
        if !secret.path.starts_with("/run/secrets/") || secret.path.split('/').any(|c| c == "..") {
            bail!(
                "secret {:?}: the path {:?} is not below /run/secrets without '..'",
                secret.name,
                secret.path
            );
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"{"schema":1,"appliance":"hello","entry":{"argv":["/bin/hello","x"],"env":{"A":"b"}},
        "modules":["/lib/modules/tsm.ko.xz"],"root":{"kind":"initramfs"}}"#;

    #[test]
    fn good_config_parses() {
        let config = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(config.entry.argv, ["/bin/hello", "x"]);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let err = |text: String| format!("{:#}", parse(text.as_bytes()).unwrap_err());
        assert!(err(GOOD.replace("\"schema\":1", "\"schema\":2")).contains("schema 2"));
        assert!(
            err(GOOD.replace("\"/bin/hello\",", "\"bin/hello\",")).contains("not an absolute path")
        );
        assert!(err(GOOD.replace("[\"/bin/hello\",\"x\"]", "[]")).contains("entry.argv is empty"));
        assert!(err(GOOD.replace("/lib/modules", "lib/modules")).contains("module"));
        assert!(err(GOOD.replace("}}", "},\"extra\":1}")).contains("not a valid init config"));
        let with_secret = GOOD.replace(
            r#""initramfs"}}"#,
            r#""initramfs"},"secrets":[{"name":"token","resource":"default/app/token","path":"/run/secrets/token","mode":256}]}"#,
        );
        assert_eq!(parse(with_secret.as_bytes()).unwrap().secrets.len(), 1);
        let outside = with_secret.replace("/run/secrets/token", "/etc/token");
        assert!(err(outside).contains("not below /run/secrets"));
        let with_net = |prefix: u32| {
            GOOD.replace(
                r#""initramfs"}}"#,
                &format!(
                    r#""initramfs"}},"network":{{"address":"10.0.2.15","prefix":{prefix}}}}}"#
                ),
            )
        };
        let config = parse(with_net(24).as_bytes()).unwrap();
        assert_eq!(
            config.network.unwrap().address,
            std::net::Ipv4Addr::new(10, 0, 2, 15)
        );
        assert!(err(with_net(0)).contains("prefix /0"));
        assert!(err(with_net(32)).contains("prefix /32"));
        let log_none = GOOD.replace(r#""env":{"A":"b"}"#, r#""env":{"A":"b"},"log":"none""#);
        assert_eq!(
            parse(log_none.as_bytes()).unwrap().entry.log,
            snpkit_wire::init::EntryLog::None
        );
        let log_bad = GOOD.replace(r#""env":{"A":"b"}"#, r#""env":{"A":"b"},"log":"syslog""#);
        assert!(err(log_bad).contains("not a valid init config"));
    }
}
