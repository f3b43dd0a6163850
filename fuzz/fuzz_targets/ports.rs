//! `hull run -p` and `hull network create --subnet`: what parses must print
//! as something that parses to the same value.

#![no_main]

use bridge::check_subnet6;
use bridge::{PortMapping, Subnet, Subnet6};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = text.parse::<PortMapping>() {
        assert_eq!(p.to_string().parse::<PortMapping>(), Ok(p));
    }
    let v4 = text.parse::<Subnet>();
    if let Ok(s) = v4 {
        assert_eq!(s.to_string().parse::<Subnet>(), Ok(s));
        let _ = (s.broadcast(), s.nth(1), s.contains(s.addr));
    }
    let v6 = text.parse::<Subnet6>();
    if let Ok(s) = v6 {
        assert_eq!(s.to_string().parse::<Subnet6>(), Ok(s));
        let _ = (s.nth(1), s.contains(s.addr));
    }
    // A pair of subnets: `v4 v6`.
    if let Some((a, b)) = text.split_once(' ') {
        if let (Ok(a), Ok(b)) = (a.parse::<Subnet>(), b.parse::<Subnet6>()) {
            let _ = check_subnet6(b, a);
        }
    }
});
