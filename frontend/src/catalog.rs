//! Every pattern Patternscope teaches: its slug, one-sentence summary, and (for built demos)
//! the explanation shown beside the diagram.

/// One pattern and what the page says about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Pattern {
    pub slug: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    /// Whether its demo exists. Unbuilt patterns are listed as such, never faked.
    pub built: bool,
    pub how: &'static str,
    pub pros: &'static [&'static str],
    pub cons: &'static [&'static str],
    pub used_in: &'static str,
}

const fn planned(slug: &'static str, title: &'static str, summary: &'static str) -> Pattern {
    Pattern {
        slug,
        title,
        summary,
        built: false,
        how: "",
        pros: &[],
        cons: &[],
        used_in: "",
    }
}

pub const PATTERNS: &[Pattern] = &[
    Pattern {
        slug: "request-response",
        title: "Request / response",
        summary: "The client asks, the server parses, works, serializes and answers: one round trip, the shape of nearly all HTTP.",
        built: true,
        how: "The browser sends an order (a list of items) to POST /api/echo in JSON, XML or MessagePack. \
              The server parses it, works for the chosen time, and answers in the same format. It times each \
              phase and reports them in a Server-Timing header, which splits the server's activation bar below \
              and shows in DevTools' Timing tab.",
        pros: &[
            "Simple: every client, proxy, cache and tool understands it.",
            "Stateless per exchange, so it scales by adding servers.",
            "Errors are explicit: each request gets exactly one status code.",
        ],
        cons: &[
            "The client waits: latency is one full round trip plus all the server's work.",
            "The server cannot speak first: news must wait for the next request.",
            "Each request repeats its headers; for small bodies they can outweigh the payload.",
        ],
        used_in: "REST and JSON APIs, web pages, GraphQL, gRPC unary calls.",
    },
    planned(
        "upload",
        "Whole vs chunked upload",
        "One big request versus many acknowledged chunks that can resume after an interruption.",
    ),
    planned(
        "sync-async",
        "Synchronous vs asynchronous",
        "A caller that waits for each answer versus one that keeps working; a blocking handler versus one that awaits.",
    ),
    planned(
        "short-polling",
        "Short polling",
        "Submit a job, get a handle at once, then keep asking \"is it done yet?\".",
    ),
    planned(
        "long-polling",
        "Long polling",
        "Ask once and let the server hold the request until something changes or a timeout passes.",
    ),
    planned(
        "sse",
        "Server-Sent Events",
        "One long response that streams events; a reconnect with Last-Event-ID resumes without loss.",
    ),
    planned(
        "push",
        "Push over WebSocket",
        "An upgrade handshake, then frames the server sends whenever it likes.",
    ),
    planned(
        "pubsub",
        "Publish / subscribe",
        "Publishers hand messages to a broker that fans them out to every subscriber.",
    ),
    planned(
        "multiplexing",
        "Multiplexing vs demultiplexing",
        "Many requests as streams of one HTTP/2 connection versus a pool of HTTP/1.1 connections.",
    ),
    planned(
        "stateful-stateless",
        "Stateful vs stateless",
        "Sessions in one instance's memory break behind a load balancer; stateless ones survive.",
    ),
    planned(
        "sidecar",
        "Sidecar",
        "A proxy beside the app adds headers, logs, retries and rate limits without the app knowing.",
    ),
    planned(
        "compare",
        "All notification patterns side by side",
        "One job through short polling, long polling, SSE and WebSocket at once, with measured costs.",
    ),
];

pub fn find(slug: &str) -> Option<&'static Pattern> {
    PATTERNS.iter().find(|p| p.slug == slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_built_demos_are_explained() {
        for (i, p) in PATTERNS.iter().enumerate() {
            assert!(
                PATTERNS[i + 1..].iter().all(|q| q.slug != p.slug),
                "{} twice",
                p.slug
            );
            if p.built {
                assert!(
                    !p.how.is_empty() && !p.pros.is_empty() && !p.cons.is_empty(),
                    "{}",
                    p.slug
                );
            }
        }
        assert_eq!(PATTERNS.len(), 12);
    }
}
