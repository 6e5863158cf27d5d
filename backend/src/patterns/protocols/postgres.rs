//! The SQL lane: tokio-postgres asks a real PostgreSQL (`--postgres-url`) one parameterised
//! query over a fresh connection, through an in-process relay ([`pg_wire::pump`]) that records
//! every wire message both ways. The demo's small table is created when the server starts.

use std::{sync::Arc, time::Duration, time::Instant};

use protocol::protocols::{Direction, SQL, ServiceRow, SqlLane};
use tokio::{net::TcpStream, sync::Semaphore};
use tokio_postgres::{NoTls, config::Host, config::SslMode};

use super::pg_wire::{WireLog, pump};
use crate::trace::Tracer;

/// How to turn the lane on, shown when it is off.
pub const HOW_TO_ENABLE: &str = "No PostgreSQL: start the server with --postgres-url \
     postgres://USER@HOST:PORT/DB (make test starts a private one with scripts/with-postgres.sh).";
/// Connecting, the query and closing together give up after this.
pub const LANE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the demo holds to PostgreSQL at once, all clients together (each lookup opens
/// one for its own run and closes it): well under PostgreSQL's default 100.
pub const MAX_CONNECTIONS: usize = 8;

/// The demo's table and its rows (the services the DNS zone describes too).
const SETUP: &str = "CREATE TABLE IF NOT EXISTS patternscope_services (
    name text PRIMARY KEY, port integer NOT NULL, owner text NOT NULL, note text NOT NULL);
INSERT INTO patternscope_services VALUES
    ('www', 443, 'web team', 'the front door: serves the pages'),
    ('api', 8443, 'platform team', 'the JSON API behind the pages'),
    ('db', 5432, 'data team', 'PostgreSQL: orders and accounts'),
    ('queue', 5672, 'platform team', 'the job queue the workers consume')
ON CONFLICT (name) DO NOTHING";

/// A PostgreSQL the lane may ask. Cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    config: tokio_postgres::Config,
    /// `host:port` to open the relay's connection to.
    addr: String,
    connections: Arc<Semaphore>,
}

impl Postgres {
    /// Checks `url`, connects once and makes sure the demo's table is there.
    pub async fn connect(url: &str) -> Result<Postgres, String> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        config.ssl_mode(SslMode::Disable);
        config.connect_timeout(Duration::from_secs(3));
        config.application_name("patternscope");
        let host = match config.get_hosts() {
            [Host::Tcp(host)] => host.clone(),
            [] => "127.0.0.1".to_owned(),
            _ => return Err("give one host, reached over TCP (host:port)".into()),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let (client, connection) = tokio::time::timeout(LANE_TIMEOUT, config.connect(NoTls))
            .await
            .map_err(|_| format!("no answer from {addr} within {} s", LANE_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let running = tokio::spawn(connection);
        // Two instances starting at once may race to create the table: one more try settles it.
        let mut made = client.batch_execute(SETUP).await;
        if made.is_err() {
            made = client.batch_execute(SETUP).await;
        }
        made.map_err(|e| format!("cannot create the demo's table: {e}"))?;
        drop(client);
        let _ = running.await;
        Ok(Postgres {
            config,
            addr,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        })
    }

    /// Asks for service `name` on a connection of its own, through a recording relay.
    pub async fn lookup(&self, name: &str, tracer: Tracer) -> SqlLane {
        let log = WireLog::default();
        let started = Instant::now();
        let asked = tokio::time::timeout(LANE_TIMEOUT, self.ask(name, &log, tracer)).await;
        let (rows, error) = match asked {
            Ok(Ok(rows)) => (rows, None),
            Ok(Err(e)) => (Vec::new(), Some(e)),
            Err(_) => (
                Vec::new(),
                Some(format!("no answer within {} s", LANE_TIMEOUT.as_secs())),
            ),
        };
        SqlLane {
            enabled: true,
            sql: SQL.to_owned(),
            rows,
            messages: log.take(),
            error,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }

    async fn ask(
        &self,
        name: &str,
        log: &WireLog,
        tracer: Tracer,
    ) -> Result<Vec<ServiceRow>, String> {
        let _permit = self
            .connections
            .acquire()
            .await
            .map_err(|_| "the server is stopping".to_owned())?;
        let server = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
        let _ = server.set_nodelay(true);
        // tokio-postgres talks to one end of an in-memory pipe; the relay joins the other end
        // to the real TCP connection, reading each message on the way.
        let (ours, relayed) = tokio::io::duplex(64 * 1024);
        let (from_client, to_client) = tokio::io::split(relayed);
        let (from_server, to_server) = server.into_split();
        let up = pump(
            from_client,
            to_server,
            Direction::Request,
            log.clone(),
            tracer.clone(),
        );
        let down = pump(
            from_server,
            to_client,
            Direction::Response,
            log.clone(),
            tracer,
        );
        let relay = async { tokio::join!(up, down) };
        let talk = async {
            let (client, connection) = self
                .config
                .connect_raw(ours, NoTls)
                .await
                .map_err(|e| format!("PostgreSQL refused the connection: {e}"))?;
            let connection = tokio::spawn(connection);
            let rows = client.query(SQL, &[&name]).await;
            // Dropping the client sends Terminate; the connection task then ends.
            drop(client);
            let _ = connection.await;
            let rows = rows.map_err(|e| format!("the query failed: {e}"))?;
            rows.iter()
                .map(|row| {
                    Ok(ServiceRow {
                        name: row.try_get(0)?,
                        port: row.try_get(1)?,
                        owner: row.try_get(2)?,
                        note: row.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(|e| format!("unexpected row: {e}"))
        };
        let (rows, _) = tokio::join!(talk, relay);
        rows
    }
}
