//! IPv4 CIDR blocks, as security group rules and subnets name them (`10.0.0.0/16`).
//!
//! Route decisions compare blocks: does a rule's range hold the endpoint's whole subnet (it
//! admits the endpoint), part of it (it may), or none; is a range public (reachable from the
//! internet) or only private. IPv6 ranges are not modelled: EC2 Instance Connect Endpoints
//! reach instances over IPv4, and the direct route is judged by the instance's public IPv4.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 network: its address with the host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// `0.0.0.0/0`: every address.
    pub const ANYWHERE: Ipv4Cidr = Ipv4Cidr {
        network: Ipv4Addr::UNSPECIFIED,
        prefix_len: 0,
    };

    /// The block of `prefix_len` bits around `address` (host bits are cleared), or `None` when
    /// the length is over 32.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        let mask = mask(prefix_len)?;
        Some(Self {
            network: Ipv4Addr::from(u32::from(address) & mask),
            prefix_len,
        })
    }

    fn first(self) -> u32 {
        u32::from(self.network)
    }

    fn last(self) -> u32 {
        self.first() | !mask(self.prefix_len).unwrap_or(0)
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(ip))
    }

    /// Whether every address of `other` is in this block.
    pub fn contains_block(self, other: Ipv4Cidr) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }

    /// Whether the two blocks share at least one address.
    pub fn overlaps(self, other: Ipv4Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether the block lies wholly in the private (RFC 1918) or shared (RFC 6598, carrier-grade
    /// NAT) ranges, which the internet cannot route to.
    pub fn is_private(self) -> bool {
        [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
        ]
        .iter()
        .filter_map(|range| range.parse::<Ipv4Cidr>().ok())
        .any(|range| range.contains_block(self))
    }
}

fn mask(prefix_len: u8) -> Option<u32> {
    match prefix_len {
        0 => Some(0),
        1..=32 => Some(u32::MAX << (32 - u32::from(prefix_len))),
        _ => None,
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Why a text is not an IPv4 CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IPv4 CIDR block such as 10.0.0.0/16")]
pub struct NotACidr(String);

impl FromStr for Ipv4Cidr {
    type Err = NotACidr;

    /// Parses `a.b.c.d/n`. EC2 reports networks with their host bits cleared; any set here are
    /// cleared too rather than refused, since only the range matters.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || NotACidr(text.to_owned());
        let (address, prefix_len) = text.split_once('/').ok_or_else(invalid)?;
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        let prefix_len: u8 = prefix_len.parse().map_err(|_| invalid())?;
        Ipv4Cidr::new(address, prefix_len).ok_or_else(invalid)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_parse_print_and_clear_host_bits() {
        assert_eq!(cidr("10.10.0.0/16").to_string(), "10.10.0.0/16");
        assert_eq!(cidr("10.10.1.7/24").to_string(), "10.10.1.0/24");
        assert_eq!(cidr("0.0.0.0/0"), Ipv4Cidr::ANYWHERE);
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "::/0", "x/8"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_and_overlap_compare_ranges() {
        let vpc = cidr("10.10.0.0/16");
        let subnet = cidr("10.10.1.0/24");
        assert!(vpc.contains(Ipv4Addr::new(10, 10, 200, 1)));
        assert!(!vpc.contains(Ipv4Addr::new(10, 11, 0, 1)));
        assert!(vpc.contains_block(subnet) && !subnet.contains_block(vpc));
        assert!(subnet.overlaps(vpc) && vpc.overlaps(subnet));
        assert!(cidr("10.10.1.128/25").overlaps(subnet));
        assert!(!cidr("10.10.2.0/24").overlaps(subnet));
        assert!(Ipv4Cidr::ANYWHERE.contains(Ipv4Addr::BROADCAST));
        assert!(cidr("255.255.255.255/32").contains(Ipv4Addr::BROADCAST));
    }

    #[test]
    fn private_ranges_are_told_from_public_ones() {
        for private in [
            "10.0.0.0/8",
            "172.31.0.0/16",
            "192.168.1.0/24",
            "100.64.0.0/10",
        ] {
            assert!(cidr(private).is_private(), "{private}");
        }
        for public in ["0.0.0.0/0", "203.0.113.0/24", "172.0.0.0/8", "8.8.8.8/32"] {
            assert!(!cidr(public).is_private(), "{public}");
        }
    }

    #[test]
    fn blocks_serialize_as_text() {
        let json = serde_json::to_string(&cidr("10.10.0.0/16")).unwrap();
        assert_eq!(json, "\"10.10.0.0/16\"");
        assert_eq!(
            serde_json::from_str::<Ipv4Cidr>(&json).unwrap(),
            cidr("10.10.0.0/16")
        );
        assert!(serde_json::from_str::<Ipv4Cidr>("\"10.10.0.0\"").is_err());
    }
}
