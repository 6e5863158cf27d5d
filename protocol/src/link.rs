//! The network link a run is shaped to: a few presets of round trip, bandwidth each way and
//! loss, named in every request of the run by the `link` query parameter. The server holds the
//! run's bytes to the link's timing in both directions; the page draws what it then sees.

use serde::{Deserialize, Serialize};

/// Query parameter naming the link a run's request is shaped to; absent means [`Link::Local`].
pub const LINK_PARAM: &str = "link";

/// A preset link. The names are what `?link=` takes and what a share link and an exported
/// trace carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Link {
    /// Nothing added: the real network only.
    #[default]
    #[serde(rename = "local")]
    Local,
    #[serde(rename = "4g")]
    FourG,
    #[serde(rename = "3g")]
    ThreeG,
    #[serde(rename = "satellite")]
    Satellite,
    #[serde(rename = "lossy")]
    Lossy,
}

/// What a link adds. Rates are bits per second; `None` is not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSpec {
    /// Round trip added, split evenly between the two directions.
    pub rtt_ms: u32,
    /// Server to browser.
    pub down_bps: Option<u64>,
    /// Browser to server.
    pub up_bps: Option<u64>,
    /// Packets lost in a thousand, each sent again a retransmission timeout later.
    pub loss_per_mille: u32,
}

impl LinkSpec {
    /// A packet's payload: a TCP segment on an Ethernet-sized path.
    pub const PACKET_BYTES: usize = 1460;
    /// Linux's shortest retransmission timeout: a lost packet is sent again this long after,
    /// plus one round trip.
    pub const MIN_RTO_MS: u32 = 200;

    /// How long a lost packet's retransmission delays it.
    pub fn retransmit_ms(&self) -> u32 {
        Self::MIN_RTO_MS + self.rtt_ms
    }
}

impl Link {
    /// Every preset, in the order a control lists them.
    pub const ALL: [Link; 5] = [
        Link::Local,
        Link::FourG,
        Link::ThreeG,
        Link::Satellite,
        Link::Lossy,
    ];

    /// The name `?link=` takes.
    pub fn name(self) -> &'static str {
        match self {
            Link::Local => "local",
            Link::FourG => "4g",
            Link::ThreeG => "3g",
            Link::Satellite => "satellite",
            Link::Lossy => "lossy",
        }
    }

    /// The preset named `name`, if any.
    pub fn from_name(name: &str) -> Option<Link> {
        Link::ALL.into_iter().find(|l| l.name() == name)
    }

    /// What the link adds.
    pub fn spec(self) -> LinkSpec {
        const MBIT: u64 = 1_000_000;
        match self {
            Link::Local => LinkSpec {
                rtt_ms: 0,
                down_bps: None,
                up_bps: None,
                loss_per_mille: 0,
            },
            Link::FourG => LinkSpec {
                rtt_ms: 50,
                down_bps: Some(10 * MBIT),
                up_bps: Some(5 * MBIT),
                loss_per_mille: 0,
            },
            Link::ThreeG => LinkSpec {
                rtt_ms: 300,
                down_bps: Some(1_600_000),
                up_bps: Some(750_000),
                loss_per_mille: 0,
            },
            Link::Satellite => LinkSpec {
                rtt_ms: 600,
                down_bps: Some(20 * MBIT),
                up_bps: Some(2 * MBIT),
                loss_per_mille: 0,
            },
            Link::Lossy => LinkSpec {
                rtt_ms: 100,
                down_bps: Some(5 * MBIT),
                up_bps: Some(2 * MBIT),
                loss_per_mille: 50,
            },
        }
    }

    /// How a control lists it, briefly: "3G, 300 ms".
    pub fn label(self) -> String {
        let spec = self.spec();
        match self {
            Link::Local => "local (nothing added)".to_owned(),
            Link::Lossy => format!(
                "lossy, {} ms, {} % loss",
                spec.rtt_ms,
                spec.loss_per_mille as f64 / 10.0
            ),
            _ => format!("{}, {} ms", self.title(), spec.rtt_ms),
        }
    }

    /// Its name in a sentence.
    fn title(self) -> &'static str {
        match self {
            Link::Local => "local",
            Link::FourG => "4G",
            Link::ThreeG => "3G",
            Link::Satellite => "satellite",
            Link::Lossy => "lossy",
        }
    }

    /// All it adds: "3G: 300 ms round trip, 1.6 Mbit/s down, 0.75 up".
    pub fn describe(self) -> String {
        let spec = self.spec();
        if self == Link::Local {
            return "local: nothing added".to_owned();
        }
        let name = self.title();
        let mbit =
            |bps: Option<u64>| bps.map_or("∞".to_owned(), |b| format!("{}", b as f64 / 1e6));
        let mut text = format!(
            "{name}: {} ms round trip, {} Mbit/s down, {} up",
            spec.rtt_ms,
            mbit(spec.down_bps),
            mbit(spec.up_bps)
        );
        if spec.loss_per_mille > 0 {
            text.push_str(&format!(
                ", {} % of packets lost and resent {} ms later",
                spec.loss_per_mille as f64 / 10.0,
                spec.retransmit_ms()
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_found_by_its_name_and_serializes_to_it() {
        for link in Link::ALL {
            assert_eq!(Link::from_name(link.name()), Some(link));
            assert_eq!(
                serde_json::to_string(&link).unwrap(),
                format!("\"{}\"", link.name())
            );
        }
        assert_eq!(Link::from_name("5g"), None);
    }

    #[test]
    fn a_preset_describes_what_it_adds() {
        assert_eq!(
            Link::ThreeG.describe(),
            "3G: 300 ms round trip, 1.6 Mbit/s down, 0.75 up"
        );
        assert_eq!(
            Link::Lossy.describe(),
            "lossy: 100 ms round trip, 5 Mbit/s down, 2 up, 5 % of packets lost and resent 300 ms later"
        );
        assert_eq!(Link::ThreeG.label(), "3G, 300 ms");
        assert_eq!(Link::Lossy.label(), "lossy, 100 ms, 5 % loss");
    }
}
