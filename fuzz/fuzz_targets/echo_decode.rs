//! The echo endpoint's body parser, in each format it accepts (JSON, XML, MessagePack); a
//! parsed order must encode again in every format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::echo::{EchoReply, Format, decode_order, encode_reply};

fuzz_target!(|data: &[u8]| {
    for format in Format::ALL {
        if let Ok(order) = decode_order(format, data) {
            let reply = EchoReply {
                items: u32::try_from(order.items.len()).unwrap_or(u32::MAX),
                total_cents: order
                    .items
                    .iter()
                    .map(|i| i.price_cents)
                    .fold(0u64, u64::wrapping_add),
                format,
                order,
            };
            for out in Format::ALL {
                let _ = encode_reply(out, &reply);
            }
        }
    }
});
