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
    Pattern {
        slug: "upload",
        title: "Whole vs chunked upload",
        summary: "One big request versus many acknowledged chunks that can resume after an interruption.",
        built: true,
        how: "The page takes a file you pick, or generates an image of the size you choose, and computes its \
              SHA-256. Whole: one POST carries every byte; if it breaks, everything is sent again. Chunked: the \
              page announces the upload (name, size, SHA-256), then sends each chunk as a PUT at the byte offset \
              the server acknowledged last. Interrupt cuts the chunk in flight (the server keeps nothing of it); \
              Resume asks the server how much it holds (GET) and carries on from exactly there. When the last \
              byte is in, the server hashes what it assembled and says whether it matches the page's hash.",
        pros: &[
            "Chunks survive flaky networks: only the lost chunk is sent again, not the whole file.",
            "Progress is real: each acknowledgement says how much the server holds.",
            "Each request stays small, under proxy and server body limits.",
        ],
        cons: &[
            "More requests, each with its own headers and round trip: slower on a good network.",
            "The server must keep partial uploads somewhere, bounded and expiring.",
            "Both sides need a protocol for offsets, resuming and checking the result.",
        ],
        used_in: "tus (resumable uploads), S3 multipart upload, Google Drive and YouTube resumable uploads, Dropbox upload sessions.",
    },
    Pattern {
        slug: "sync-async",
        title: "Synchronous vs asynchronous",
        summary: "A caller that waits for each answer versus one that keeps working; a blocking handler versus one that awaits.",
        built: true,
        how: "Two choices, one on each side. The client either waits for each call before making the next \
              (synchronous) or fires them all and keeps doing its own work, drawn on its lifeline (asynchronous). \
              The server's handler either blocks one of the two threads of a small pool (this run's own, so \
              what queues is your calls, not other visitors') for the whole call, so extra requests queue for \
              a free thread (the grey 'queued' part of the server's bar), or awaits a timer, freeing its \
              thread, so all calls overlap. Server-Timing reports both phases.",
        pros: &[
            "Synchronous code is simple to write and reason about: one thing at a time.",
            "Asynchronous clients stay responsive and overlap their waiting.",
            "Async handlers serve many slow calls with few threads.",
        ],
        cons: &[
            "A blocking handler ties up a thread per request: a small pool becomes a queue.",
            "A synchronous client's total time is the sum of every round trip.",
            "Async code has its own costs: harder debugging, and blocking inside it stalls everything.",
        ],
        used_in: "Thread-per-request servers (classic servlets, Rails) vs event loops (Node.js, tokio, nginx); await in every modern client.",
    },
    Pattern {
        slug: "short-polling",
        title: "Short polling",
        summary: "Submit a job, get a handle at once, then keep asking \"is it done yet?\".",
        built: true,
        how: "The browser submits a job (POST /api/jobs) and gets 202 Accepted with the job's id straight \
              away. A worker inside the server processes it step by step. The browser asks for the job's \
              state (GET /api/jobs/{id}) every N milliseconds; the server answers at once, changed or not. \
              Count the polls that brought nothing new.",
        pros: &[
            "Works everywhere: plain HTTP requests through any proxy, cache or firewall.",
            "The server keeps nothing per client between requests; easy to scale and to reason about.",
            "The client controls the pace.",
        ],
        cons: &[
            "Most polls are wasted when changes are rare: requests, headers and server work for nothing.",
            "Latency is up to one polling interval: shorter intervals cost more requests.",
            "Many clients polling fast is a self-inflicted load test.",
        ],
        used_in: "Job status pages, CI build status, payment confirmation checks, older chat and mail clients.",
    },
    Pattern {
        slug: "long-polling",
        title: "Long polling",
        summary: "Ask once and let the server hold the request until something changes or a timeout passes.",
        built: true,
        how: "The same job. Each poll (GET /api/jobs/{id}/wait?after=N) is held by the server until the job's \
              version passes N, or the timeout passes, and the browser asks again the moment it gets an \
              answer. The held time shows as a long activation bar on the server.",
        pros: &[
            "Near-instant notification over plain HTTP: the answer leaves as soon as the change happens.",
            "Far fewer empty answers than short polling.",
            "Works through proxies that would break streaming or WebSockets.",
        ],
        cons: &[
            "Each waiting client holds a connection and a little server state.",
            "One request per update, with full headers each time.",
            "Timeouts in proxies and load balancers must be longer than the hold time.",
        ],
        used_in: "Early web chat (Comet), the fallback transport of Socket.IO and SignalR, Telegram's getUpdates.",
    },
    Pattern {
        slug: "sse",
        title: "Server-Sent Events",
        summary: "One long response that streams events; a reconnect with Last-Event-ID resumes without loss.",
        built: true,
        how: "The same job. The browser opens one EventSource (GET /api/jobs/{id}/events) and the server keeps \
              the response open, writing an event (event:, id:, data:) per update, a retry: hint and keep-alive \
              comments. \"Drop the connection\" makes the server end the stream mid-job: the browser reconnects \
              by itself with a Last-Event-ID header and the server resumes after that event, so nothing is lost \
              or repeated.",
        pros: &[
            "One request, then updates as they happen: low latency, little overhead per event.",
            "Reconnection and resume are built into the browser (Last-Event-ID).",
            "Plain HTTP: works with HTTP/2, proxies and standard tooling.",
        ],
        cons: &[
            "One direction only: the client still sends requests to talk back.",
            "Text only; binary data must be encoded.",
            "Over HTTP/1.1 each stream holds one of the browser's six connections per origin.",
        ],
        used_in: "Live dashboards, notifications, tickers, streamed LLM responses.",
    },
    Pattern {
        slug: "push",
        title: "Push over WebSocket",
        summary: "An upgrade handshake, then frames the server sends whenever it likes.",
        built: true,
        how: "The browser upgrades GET /api/push/ws to a WebSocket (101 Switching Protocols), asks to follow the \
              job, and the server pushes a frame per step. Simulated chat clients, each with its own real \
              WebSocket and lifeline, join a room; the server pushes a notice when someone joins and every line \
              said. Open this page in another tab with the same room name and both see each other. The server \
              pings every few seconds; the browser answers with a pong by itself.",
        pros: &[
            "Both directions on one connection, with a few bytes of framing per message.",
            "The server speaks first, the moment it has something: lowest latency.",
            "Good for many small messages: chat, games, collaborative editing.",
        ],
        cons: &[
            "A long-lived connection per client: memory, and sticky routing behind load balancers.",
            "No built-in resume: a dropped client must ask for what it missed itself.",
            "Proxies, firewalls and HTTP tooling understand it less well than plain HTTP.",
        ],
        used_in: "Chat (Slack, Discord), multiplayer games, trading screens, collaborative editors.",
    },
    Pattern {
        slug: "pubsub",
        title: "Publish / subscribe",
        summary: "Publishers hand messages to a broker that fans them out to every subscriber.",
        built: true,
        how: "The page publishes (POST /api/pubsub/publish), or starts a ticker that publishes inside the \
              server. The broker, its own lifeline, numbers each message in its topic and pushes it to every \
              subscriber of that topic, the way RabbitMQ pushes to its consumers: each simulated subscriber \
              has its own real connection, a WebSocket (GET /api/pubsub/ws) or an event stream (GET \
              /api/pubsub/events), and its own lifeline. A subscriber that joins late misses what was \
              published before, unless it asks to replay the last N messages the topic kept. A slow \
              subscriber takes one message at a time and acknowledges it when handled (a prefetch of 1); \
              the rest wait in its queue on the server, and when that queue is full the broker drops it, \
              saying why, while the others keep receiving on time. With Redis (--redis-url), several \
              server instances share the topics: each delivery names the instance that made it.",
        pros: &[
            "Publishers and subscribers do not know each other: add a subscriber without touching the publisher.",
            "One publish reaches any number of subscribers; the broker does the fan-out.",
            "Push delivery: subscribers hear of a message as soon as it is published, no polling.",
        ],
        cons: &[
            "Fan-out costs the broker one write per subscriber: a thousand subscribers, a thousand frames.",
            "A late joiner misses what was published before it came, unless the broker keeps history.",
            "A slow subscriber must be bounded: its queue grows until the broker drops it (or messages).",
            "Delivery order and duplicates need thought once several brokers or instances are involved.",
        ],
        used_in: "RabbitMQ, Redis pub/sub, Google Pub/Sub, MQTT brokers, Kafka consumer groups, chat and live dashboards.",
    },
    Pattern {
        slug: "queue",
        title: "A queue that pushes",
        summary: "A broker pushes jobs to competing consumers within a prefetch; they acknowledge; a dead consumer's jobs go to another. Beside it, a consumer that pulls.",
        built: true,
        how: "Run declares two queues for this run on the broker you pick: the one inside this server, or a real \
              RabbitMQ when the server was started with --amqp-url. Your browser is the producer: each POST puts one \
              job on both queues (a fanout exchange on RabbitMQ). Consumers inside the server each open a channel \
              and say basic.consume once, with a prefetch: from then on the broker pushes jobs to them, round \
              robin, never more unacknowledged ones to a consumer than its prefetch. A consumer works on one job at \
              a time and acknowledges it, which lets the broker push it the next. A slow consumer still gets its \
              share of pushes (they wait in its buffer); a killed one closes its channel mid-job, and the broker \
              delivers every job it had not acknowledged to another consumer, marked redelivered. The puller \
              beside them asks the other queue (basic.get) and, when the queue is empty, waits its interval before \
              asking again. Each delivery, ack and poll is drawn where it happened: on RabbitMQ they are the \
              broker's own, with its delivery tags.",
        pros: &[
            "Push: a job reaches a free consumer as soon as it is published, with no requests per job.",
            "Prefetch bounds what each consumer holds, and acks make a consumer's death lose nothing.",
            "Competing consumers share the load; adding one adds throughput without the producer knowing.",
        ],
        cons: &[
            "A message is only delivered at least once: a consumer that dies after working but before its ack makes it run twice, so work must be idempotent.",
            "A high prefetch hoards jobs at a slow consumer while others idle; a low one costs a round trip per job.",
            "Pull wastes requests on an empty queue and adds up to one interval of latency; push needs a held connection per consumer.",
        ],
        used_in: "RabbitMQ (basic.consume vs basic.get), Amazon MQ, Celery and Sidekiq workers, Azure Service Bus; Kafka and SQS consumers pull instead.",
    },
    Pattern {
        slug: "multiplexing",
        title: "Multiplexing vs demultiplexing",
        summary: "Many requests as streams of one HTTP/2 connection versus a pool of HTTP/1.1 connections.",
        built: true,
        how: "Two sides. Server side: the page asks the server, acting as a proxy, for N items at once \
              (GET /api/mux/proxy). The proxy forwards them to a real upstream server inside the same process, \
              either as N streams of one HTTP/2 connection (h2c; each stream has its own odd id and they all \
              overlap) or over a pool of K HTTP/1.1 connections, where a connection carries one request at a \
              time, so with K smaller than N the items go in waves and the rest wait for a free connection. Each \
              connection is its own lifeline (conn-1…), labelled with its connection id (the proxy's port) and \
              the stream ids. Browser side: the page fires N slow requests at once (GET /api/mux/slow). Over \
              HTTP/1.1 the browser opens at most six connections per origin, so the server never holds more than \
              six at a time and the rest queue in the browser: see them as 'stalled' in the waterfall and in the \
              Network tab. Over HTTP/2 (the server's --tls listener) all N share one connection and overlap; the \
              table says which protocol each request used (Resource Timing's nextHopProtocol).",
        pros: &[
            "HTTP/2 multiplexing: many requests in flight on one connection, no waiting for a free one.",
            "One connection means one TCP and TLS handshake, one congestion window, and header compression (HPACK).",
            "A connection pool is simple and isolates requests: a slow or broken connection affects only its own.",
        ],
        cons: &[
            "HTTP/1.1 carries one request per connection at a time: with too few connections, requests queue.",
            "More connections cost handshakes, memory and ports on both ends, and browsers cap them at six per origin.",
            "On one HTTP/2 connection a lost TCP packet stalls every stream (head-of-line blocking); HTTP/3 over QUIC removes that.",
        ],
        used_in: "Browsers to HTTP/2 and HTTP/3 sites, gRPC (always HTTP/2), reverse proxies and service meshes (Envoy, nginx upstream keep-alive pools), database and HTTP client connection pools.",
    },
    Pattern {
        slug: "stateful-stateless",
        title: "Stateful vs stateless",
        summary: "Sessions in one instance's memory break behind a load balancer; stateless ones survive.",
        built: true,
        how: "Run starts a real cluster for you inside the server: a load balancer and two instances, each \
              listening on its own port. Your browser may only talk to this site, so server (the site's front \
              door) forwards each request unchanged to the balancer (lb), which sends it to instance-a or \
              instance-b in turn (round robin), or, when sticky, back to the instance named in its lb_sticky \
              cookie. You log in, then ask for your profile a few times. Stateful: the session lives in the \
              memory of the instance that logged you in, so the other instance, or the same one after a \
              restart, answers 401 and a note on its lifeline says why. Stateless: the session is a signed \
              token in the cookie (HMAC-SHA256, any instance checks it) or sits in a store both instances \
              share, so every instance accepts it, restart included.",
        pros: &[
            "Stateful: simplest to write, and reading the session costs nothing.",
            "Stateless instances can be added, removed and restarted freely: any of them serves anyone.",
            "A signed token needs no lookup at all; a shared store keeps sessions revocable.",
        ],
        cons: &[
            "Stateful sessions tie users to one instance: sticky routing, uneven load, logouts on restart.",
            "A token cannot be revoked before it expires and grows every request's headers.",
            "A shared store is one more network hop per request and one more thing to keep up.",
        ],
        used_in: "Sticky sessions in HAProxy, nginx and cloud load balancers; JWT and signed cookies (Rails, Flask); Redis or Memcached session stores behind stateless web tiers.",
    },
    Pattern {
        slug: "sidecar",
        title: "Sidecar",
        summary: "A proxy beside the app adds headers, logs, retries and rate limits without the app knowing.",
        built: true,
        how: "Run starts two real listeners inside the server: a plain app that fails the share of requests \
              you choose, and a sidecar proxy on its own port in front of it. Your browser may only talk to \
              this site, so server (the site's front door) forwards each request unchanged to the sidecar. The \
              sidecar first checks its rate limit (a token bucket holding one second's worth; over it, a 429 \
              and the app is never called), then adds an x-request-id and a W3C traceparent header, logs the \
              request, and forwards it to the app. When the app answers 5xx, the sidecar waits (100 ms, then \
              200 ms) and tries again, up to three attempts, each a new span of the same trace. Click an \
              arrow from sidecar to app to see the headers it added.",
        pros: &[
            "Cross-cutting concerns live in one place, the same for every service and language.",
            "The app stays plain: no retry, tracing or rate-limit code to write or update.",
            "Policies (limits, retries, timeouts) change without redeploying the app.",
        ],
        cons: &[
            "One more hop and process per instance: latency, memory and another thing to run.",
            "Retries multiply load on a struggling app; they are only safe for idempotent requests.",
            "Behaviour is split between app and sidecar config, which is harder to debug.",
        ],
        used_in: "Service meshes (Istio and Linkerd with Envoy or linkerd2-proxy), Dapr, log and metrics agents beside containers in a Kubernetes pod.",
    },
    Pattern {
        slug: "rest-graphql",
        title: "REST vs GraphQL",
        summary: "One screen's data as many REST calls, each answering a whole resource, versus one GraphQL query answering exactly the fields asked for.",
        built: true,
        how: "The screen: a user, their newest posts, each post's comment count and who commented. The REST lane \
              makes the calls a REST client makes: GET /api/rest/users/{id} and /users/{id}/posts at once, then \
              /posts/{id}/comments for every post, then /users/{id} for every commenter not yet known; each answer \
              carries every field of its resource (open one in the inspector: email, bio, likes... that the screen \
              never shows). The GraphQL lane sends one POST /api/graphql with the screen's query to a real GraphQL \
              server (async-graphql). Its resolvers load the data, drawn on the db lifeline: one load per post and \
              per commenter (the N+1 problem, now inside the server), or, batched, one load per level through \
              DataLoaders. Each load takes 4 ms, one at a time per request as over one database connection. Pick a \
              slower Link (3G: 300 ms round trip) to see what every extra round trip in a row costs.",
        pros: &[
            "GraphQL: one round trip fills a whole screen, however many resources it touches.",
            "GraphQL: the client names the fields it needs; nothing more crosses the wire.",
            "REST: each URL is a resource that HTTP caches, CDNs and browsers understand and cache.",
            "REST: simple servers, simple tools (curl, the Network tab), one query shape per endpoint.",
        ],
        cons: &[
            "REST: a screen that joins resources takes many requests, and round trips in a row on a slow link.",
            "REST: every answer carries the whole resource: bytes the screen never shows.",
            "GraphQL: the N+1 moves into the server; it needs batching (DataLoader) to stay cheap.",
            "GraphQL: one POST per query defeats HTTP caching, and a query's cost must be bounded (depth, complexity).",
        ],
        used_in: "REST: most public web APIs (GitHub's v3, Stripe, S3). GraphQL: GitHub's v4 API, Shopify, Facebook's apps, mobile clients on slow links.",
    },
    Pattern {
        slug: "protocols",
        title: "Request/response beyond HTTP",
        summary: "One request whose handler asks a DNS server over UDP and PostgreSQL over its wire protocol: request/response with and without a connection.",
        built: true,
        how: "Run sends one request, GET /api/protocols/lookup, naming a service. Its handler asks two other \
              servers at once, each over its own protocol, and answers with what both said. DNS: the server's \
              resolver (hickory-resolver) sends a query datagram over UDP to an authoritative DNS server running \
              inside the process for the zone patternscope.test; the answer datagram carries the same message id, \
              which is all that pairs them: there is no connection. A relay between the two passes each datagram \
              on and records it; with Drop on it loses the first query, the resolver hears nothing, waits its \
              timeout (400 ms) and sends the query again. SQL: tokio-postgres opens a connection to a real \
              PostgreSQL (--postgres-url) and sends one parameterised SELECT with the extended query protocol: \
              Parse, Describe and Sync (answered by ParseComplete, ParameterDescription, RowDescription and \
              ReadyForQuery), then Bind with the name as $1, Execute and Sync (answered by BindComplete, a \
              DataRow per row, CommandComplete and ReadyForQuery). A relay on the connection cuts the bytes into \
              messages (a type byte and a length each) as they pass, so every arrow is a message that was on \
              the wire; click one to see its fields and bytes. Without --postgres-url the SQL lane sends \
              nothing and says so.",
        pros: &[
            "DNS over UDP: one datagram each way, no handshake: the cheapest request/response there is.",
            "PostgreSQL's protocol separates parsing (Parse) from running (Bind, Execute): a statement is \
             parsed once and run many times, and parameters never mix with the SQL text (no injection).",
            "Both are request/response like HTTP: the client asks, the server answers, ids or order pair them.",
        ],
        cons: &[
            "UDP promises nothing: a lost datagram is noticed only by a timeout, and the client must retry \
             (and cope with a late duplicate answer).",
            "A database connection is expensive to open (startup, authentication, parameters): real \
             applications keep a pool of them, as this demo, opening one per lookup, shows the cost of not.",
            "Each protocol needs its own client, tools and proxies: none of HTTP's caches, status codes or \
             browser support.",
        ],
        used_in: "Every name a computer resolves (DNS, UDP port 53), every application talking to PostgreSQL \
                  (and MySQL, Redis, Kafka each with their own wire protocol), connection poolers such as \
                  PgBouncer that speak the protocol on both sides.",
    },
    Pattern {
        slug: "compare",
        title: "All notification patterns side by side",
        summary: "One job through short polling, long polling, SSE and WebSocket at once, with measured costs.",
        built: true,
        how: "Run starts four identical jobs at the same moment, one per pattern, each followed by the same \
              client code its own demo uses. The table is measured from each pattern's own trace: requests made, \
              bytes up (request heads and bodies as the server received them, client frames) and down (Resource \
              Timing transfer sizes, SSE event and WebSocket frame sizes), the time from the worker emitting an \
              update to the page having it (p50, p95), polls that brought nothing, TCP connections used, and the \
              total time connections were held open waiting.",
        pros: &[
            "Short polling: simplest, but pays in requests and latency up to one interval.",
            "Long polling: prompt over plain HTTP, one request per change.",
            "SSE and WebSocket: one connection, updates as they happen, a few bytes each.",
        ],
        cons: &[
            "Polling wastes requests when nothing changed.",
            "Held requests and open streams cost a connection each while they wait.",
            "Streams and sockets need reconnect logic and friendly proxies.",
        ],
        used_in: "Choosing how a product notifies its clients: dashboards, chat, job status, feeds.",
    },
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
        assert_eq!(PATTERNS.len(), 15);
    }
}
