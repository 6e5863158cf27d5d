//! The request/response demo: the payload the page sends in one of three formats, the reply,
//! and the one codec both sides use to write and read them.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A body format the echo endpoint understands, chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Xml,
    /// MessagePack, a binary format.
    MsgPack,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Json, Format::Xml, Format::MsgPack];

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
            Format::MsgPack => "application/msgpack",
        }
    }

    /// The format a `Content-Type` value names (parameters such as `charset` ignored).
    pub fn from_content_type(value: &str) -> Option<Format> {
        let essence = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/xml" | "text/xml" => Some(Format::Xml),
            "application/msgpack" | "application/vnd.msgpack" | "application/x-msgpack" => {
                Some(Format::MsgPack)
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
            Format::MsgPack => "msgpack",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether a person can read and edit the encoded body as text.
    pub fn is_text(self) -> bool {
        !matches!(self, Format::MsgPack)
    }
}

/// One record of the payload: a product line in an order, enough fields to make parsing work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    pub id: u32,
    pub name: String,
    pub price_cents: u64,
    pub in_stock: bool,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The body the page sends to `POST /api/echo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub customer: String,
    #[serde(default)]
    pub items: Vec<Item>,
}

impl Order {
    /// A deterministic order of `n` items, the same in every format.
    pub fn sample(n: u32) -> Order {
        const NAMES: [&str; 6] = ["keyboard", "monitor", "cable", "headset", "webcam", "dock"];
        Order {
            customer: "ada@example.org".to_owned(),
            items: (0..n)
                .map(|i| Item {
                    id: i + 1,
                    name: format!("{} #{}", NAMES[i as usize % NAMES.len()], i + 1),
                    price_cents: 199 + u64::from(i) * 37 % 10_000,
                    in_stock: i % 3 != 0,
                    tags: vec!["office".to_owned(), format!("batch-{}", i / 10)],
                })
                .collect(),
        }
    }
}

/// What `POST /api/echo` answers: a summary it computed, and the order echoed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EchoReply {
    pub items: u32,
    pub total_cents: u64,
    pub format: Format,
    pub order: Order,
}

/// Query parameters of `POST /api/echo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct EchoQuery {
    /// Simulated processing time in milliseconds, `0..=MAX_PROCESS_MS`.
    #[serde(default)]
    pub process_ms: u32,
}

/// Longest simulated processing the server accepts.
pub const MAX_PROCESS_MS: u32 = 10_000;
/// Largest request body the echo endpoint accepts (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// XML's shape of the same data: one `<item>` element per item and one `<tag>` per tag, where
/// JSON and MessagePack have plural arrays. Only the codec uses these.
mod xml {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "item")]
    pub struct Item {
        pub id: u32,
        pub name: String,
        pub price_cents: u64,
        pub in_stock: bool,
        #[serde(default, rename = "tag")]
        pub tags: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "order")]
    pub struct Order {
        pub customer: String,
        #[serde(default, rename = "item")]
        pub items: Vec<Item>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "reply")]
    pub struct Reply {
        pub items: u32,
        pub total_cents: u64,
        pub format: super::Format,
        pub order: Order,
    }

    impl From<super::Order> for Order {
        fn from(o: super::Order) -> Self {
            Order {
                customer: o.customer,
                items: o.items.into_iter().map(Into::into).collect(),
            }
        }
    }
    impl From<Order> for super::Order {
        fn from(o: Order) -> Self {
            super::Order {
                customer: o.customer,
                items: o.items.into_iter().map(Into::into).collect(),
            }
        }
    }
    impl From<super::Item> for Item {
        fn from(i: super::Item) -> Self {
            Item {
                id: i.id,
                name: i.name,
                price_cents: i.price_cents,
                in_stock: i.in_stock,
                tags: i.tags,
            }
        }
    }
    impl From<Item> for super::Item {
        fn from(i: Item) -> Self {
            super::Item {
                id: i.id,
                name: i.name,
                price_cents: i.price_cents,
                in_stock: i.in_stock,
                tags: i.tags,
            }
        }
    }
    impl From<super::EchoReply> for Reply {
        fn from(r: super::EchoReply) -> Self {
            Reply {
                items: r.items,
                total_cents: r.total_cents,
                format: r.format,
                order: r.order.into(),
            }
        }
    }
    impl From<Reply> for super::EchoReply {
        fn from(r: Reply) -> Self {
            super::EchoReply {
                items: r.items,
                total_cents: r.total_cents,
                format: r.format,
                order: r.order.into(),
            }
        }
    }
}

/// Writes `value` in `format`; `X` is its XML shape. `len_hint` sizes the buffer for JSON and
/// MessagePack, so that it is allocated once rather than grown as the encoder writes.
fn encode<T, X>(format: Format, value: &T, len_hint: usize) -> Result<Vec<u8>, String>
where
    T: Serialize + Clone + Into<X>,
    X: Serialize,
{
    let mut out = Vec::with_capacity(len_hint);
    match format {
        Format::Json => serde_json::to_writer(&mut out, value).map_err(|e| e.to_string())?,
        Format::Xml => {
            return quick_xml::se::to_string(&value.clone().into())
                .map(String::into_bytes)
                .map_err(|e| e.to_string());
        }
        Format::MsgPack => {
            rmp_serde::encode::write_named(&mut out, value).map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

impl Order {
    /// A little over the order's size in JSON (its strings plus field names, numbers and
    /// punctuation; more only when strings need escaping), so that the encoder's buffer is
    /// allocated once: growing it cost the echo about 1,000 instructions a request (callgrind).
    fn json_len_hint(&self) -> usize {
        let item = |i: &Item| 96 + i.name.len() + i.tags.iter().map(|t| t.len() + 3).sum::<usize>();
        32 + self.customer.len() + self.items.iter().map(item).sum::<usize>()
    }
}

/// Reads a `T` in `format`; `X` is its XML shape. The error says what is malformed.
fn decode<T, X>(format: Format, body: &[u8]) -> Result<T, String>
where
    T: DeserializeOwned,
    X: DeserializeOwned + Into<T>,
{
    match format {
        Format::Json => serde_json::from_slice(body).map_err(|e| e.to_string()),
        Format::Xml => {
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            quick_xml::de::from_str::<X>(text)
                .map(Into::into)
                .map_err(|e| e.to_string())
        }
        Format::MsgPack => rmp_serde::from_slice(body).map_err(|e| e.to_string()),
    }
}

pub fn encode_order(format: Format, order: &Order) -> Result<Vec<u8>, String> {
    encode::<_, xml::Order>(format, order, order.json_len_hint())
}

pub fn decode_order(format: Format, body: &[u8]) -> Result<Order, String> {
    decode::<_, xml::Order>(format, body)
}

pub fn encode_reply(format: Format, reply: &EchoReply) -> Result<Vec<u8>, String> {
    // The order and `{"items":…,"total_cents":…,"format":"msgpack","order":}`.
    encode::<_, xml::Reply>(format, reply, reply.order.json_len_hint() + 80)
}

pub fn decode_reply(format: Format, body: &[u8]) -> Result<EchoReply, String> {
    decode::<_, xml::Reply>(format, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_orders_and_replies() {
        let order = Order::sample(25);
        let reply = EchoReply {
            items: 25,
            total_cents: 9,
            format: Format::Xml,
            order: order.clone(),
        };
        for format in Format::ALL {
            let body = encode_order(format, &order).unwrap();
            assert_eq!(decode_order(format, &body).unwrap(), order, "{format:?}");
            let body = encode_reply(format, &reply).unwrap();
            assert_eq!(decode_reply(format, &body).unwrap(), reply, "{format:?}");
        }
    }

    #[test]
    fn the_json_size_hint_is_a_little_over() {
        for n in [0, 1, 3, 25, 200] {
            let order = Order::sample(n);
            let reply = EchoReply {
                items: n,
                total_cents: u64::MAX,
                format: Format::MsgPack,
                order: order.clone(),
            };
            let json = encode_order(Format::Json, &order).unwrap().len();
            let hint = order.json_len_hint();
            assert!(
                json <= hint && hint <= json * 2 + 64,
                "{n} items: {json} bytes, hint {hint}"
            );
            let json = encode_reply(Format::Json, &reply).unwrap().len();
            assert!(
                json <= hint + 80,
                "{n} items: reply of {json} bytes, hint {}",
                hint + 80
            );
        }
    }

    #[test]
    fn each_format_has_its_natural_shape() {
        let order = Order::sample(2);
        let json = String::from_utf8(encode_order(Format::Json, &order).unwrap()).unwrap();
        assert!(
            json.starts_with(r#"{"customer":"ada@example.org","items":[{"id":1,"#),
            "{json}"
        );
        let xml = String::from_utf8(encode_order(Format::Xml, &order).unwrap()).unwrap();
        assert!(
            xml.starts_with("<order><customer>ada@example.org</customer><item><id>1</id>"),
            "{xml}"
        );
        assert!(xml.contains("<tag>office</tag><tag>batch-0</tag>"), "{xml}");
        let packed = encode_order(Format::MsgPack, &order).unwrap();
        assert!(packed.len() < json.len() && json.len() < xml.len());
    }

    #[test]
    fn content_types_map_to_formats() {
        assert_eq!(
            Format::from_content_type("application/json; charset=utf-8"),
            Some(Format::Json)
        );
        assert_eq!(Format::from_content_type("text/xml"), Some(Format::Xml));
        assert_eq!(
            Format::from_content_type("application/vnd.msgpack"),
            Some(Format::MsgPack)
        );
        assert_eq!(Format::from_content_type("text/plain"), None);
    }
}
