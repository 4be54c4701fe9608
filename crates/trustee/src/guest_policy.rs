//! The fields of an SNP guest policy that Trustee's SNP verifier turns into claims.

/// A guest policy (SNP ABI spec, `SNP_LAUNCH_START`), read the way Trustee's SNP verifier reads a
/// report's POLICY field into `policy_*` claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuestPolicy(pub(crate) u64);

impl GuestPolicy {
    pub(crate) fn abi_minor(self) -> u64 {
        self.0 & 0xff
    }
    pub(crate) fn abi_major(self) -> u64 {
        (self.0 >> 8) & 0xff
    }
    pub(crate) fn smt_allowed(self) -> bool {
        self.bit(16)
    }
    pub(crate) fn migrate_ma(self) -> bool {
        self.bit(18)
    }
    pub(crate) fn debug_allowed(self) -> bool {
        self.bit(19)
    }
    pub(crate) fn single_socket(self) -> bool {
        self.bit(20)
    }
    fn bit(self, n: u32) -> bool {
        self.0 & (1 << n) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::GuestPolicy;

    #[test]
    fn fields_sit_where_the_abi_puts_them() {
        let p = GuestPolicy(0x0007_0a05);
        assert_eq!((p.abi_major(), p.abi_minor()), (0x0a, 0x05));
        assert!(p.smt_allowed() && p.migrate_ma() && !p.debug_allowed() && !p.single_socket());
        let p = GuestPolicy(0x0018_0000);
        assert!(p.debug_allowed() && p.single_socket() && !p.smt_allowed() && !p.migrate_ma());
    }
}
