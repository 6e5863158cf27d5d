//! The job workload the waiting-for-results demos share: `POST /api/jobs` starts a worker that
//! reports progress in steps; polling, long polling and SSE are different ways to learn of it.
//! The worker is its own lifeline: the server hands it the job, it reports each step back.

use protocol::ApiError;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, extract::State, http::StatusCode};
use protocol::{
    job::{JobCreated, JobId, JobSpec, JobUpdate, MAX_STEPS},
    pairing,
    trace::Kind,
};
use tokio::sync::{broadcast, watch};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    extract::AppJson,
    server::client::ClientId,
    server::expiring::{CLASS_CLIENTS, Expiring, WhenFull},
    server::rate_limit::Client,
    trace::server_now_us,
    trace::{Hop, TraceIds, Tracer},
};

/// Jobs one client may have kept at once: one run of every job demo (the comparison's lanes
/// included) takes about ten, and several such pages started together (40 jobs at once,
/// `tests/bounds.rs`) stay within it. Past it, the client's own oldest job that has finished
/// and that nothing reads is forgotten; when all of its jobs are running or read, a 429.
pub const JOBS_PER_CLIENT: usize = 64;
/// Jobs kept at once: every client's share for [`CLASS_CLIENTS`] clients (3,072), so a class of
/// 30 and two abusers never fill it; when full, a finished unread job of the client holding
/// the most goes, and with none, new submissions get a 429.
pub const MAX_JOBS: usize = JOBS_PER_CLIENT * CLASS_CLIENTS;
/// A job is forgotten this long after it was submitted (the longest job takes 250 s).
pub const JOB_TTL: Duration = Duration::from_secs(10 * 60);

/// One submitted job: its latest state for waiters, its history for resumers.
pub struct Job {
    pub id: JobId,
    /// The latest update, the only one whose payload is kept; long polls and event streams
    /// wait on it.
    latest: watch::Sender<JobUpdate>,
    /// When each update so far was emitted, by version (at most `MAX_STEPS + 1`), so an event
    /// stream can resume after any id. Not the updates: their payloads (up to 16 KiB each,
    /// standing for a partial result that the next one supersedes) would make a job of 50
    /// steps hold 800 KiB, a thousand jobs 800 MiB.
    history: Mutex<Vec<i64>>,
    /// Ends this job's open event streams early: the SSE demo's "drop the connection" control.
    drop_streams: broadcast::Sender<()>,
}

impl Job {
    pub fn latest(&self) -> JobUpdate {
        self.latest.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<JobUpdate> {
        self.latest.subscribe()
    }

    /// Updates with a version above `after`, oldest first: the latest whole, the ones before
    /// it as they were but for their payloads, which are not kept (the latest supersedes them).
    pub fn since(&self, after: u32) -> Vec<JobUpdate> {
        // The latest first: the worker records a version's time before it publishes the
        // version, so the history has every version up to it.
        let latest = self.latest();
        let history = self.history.lock().expect("job history lock poisoned");
        let earlier = (after.saturating_add(1)..latest.version).filter_map(|version| {
            Some(JobUpdate {
                job: latest.job.clone(),
                version,
                steps: latest.steps,
                done: false,
                emitted_us: *history.get(version as usize)?,
                payload: String::new(),
            })
        });
        let mut updates: Vec<JobUpdate> = earlier.collect();
        if latest.version > after {
            updates.push(latest);
        }
        updates
    }

    pub fn on_drop_streams(&self) -> broadcast::Receiver<()> {
        self.drop_streams.subscribe()
    }

    /// Closes every open event stream of this job; returns how many there were.
    pub fn drop_streams(&self) -> usize {
        self.drop_streams.send(()).unwrap_or(0)
    }
}

/// Every job, bounded and expiring. Cheap to clone.
#[derive(Clone)]
pub struct JobStore {
    /// Every job, never touched after it is put in: forgotten [`JOB_TTL`] after it was created
    /// (unless `--store-ttl` says otherwise) once nothing holds it; each client's share is
    /// [`JOBS_PER_CLIENT`].
    jobs: Expiring<JobId, Arc<Job>>,
}

impl Default for JobStore {
    fn default() -> Self {
        JobStore {
            jobs: Expiring::new(JOB_TTL)
                .bounded(MAX_JOBS, WhenFull::EvictLeastRecent)
                .shared(JOBS_PER_CLIENT, "jobs")
                // In use while its worker runs or a request or stream holds it.
                .kept_while(|job| Arc::strong_count(job) > 1),
        }
    }
}

impl JobStore {
    /// The same store, forgetting jobs `ttl` after they were created.
    pub fn with_ttl(mut self, ttl: Duration) -> JobStore {
        self.jobs = self.jobs.with_ttl(ttl);
        self
    }

    /// Forgets expired jobs (the periodic sweep calls it).
    pub fn prune(&self) {
        self.jobs.prune();
    }

    pub fn get(&self, id: &str) -> Result<Arc<Job>, AppError> {
        self.jobs
            .get(&JobId(id.to_owned()))
            .ok_or_else(|| AppError::NotFound(format!("no job {id:?}: unknown or expired")))
    }

    fn insert(&self, client: Option<ClientId>, job: Arc<Job>) -> Result<(), AppError> {
        self.jobs.insert_for(client, job.id.clone(), job)?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 128 random bits: the id grants access to the job (its status, events and drop), so it
/// must not be guessable.
fn new_job_id() -> JobId {
    JobId(format!("j{:032x}", rand::random::<u128>()))
}

/// Starts a job; its worker runs on its own task and stops early on shutdown.
pub fn start(
    state: &AppState,
    client: Option<ClientId>,
    spec: JobSpec,
    trace: Option<TraceIds>,
) -> Result<Arc<Job>, AppError> {
    spec.validate().map_err(AppError::Unprocessable)?;
    let id = new_job_id();
    let first = JobUpdate {
        job: id.clone(),
        version: 0,
        steps: spec.steps,
        done: false,
        emitted_us: server_now_us(),
        payload: String::new(),
    };
    let job = Arc::new(Job {
        id: id.clone(),
        latest: watch::channel(first.clone()).0,
        history: Mutex::new(Vec::with_capacity(MAX_STEPS as usize + 1)),
        drop_streams: broadcast::channel(1).0,
    });
    job.history
        .lock()
        .expect("job history lock poisoned")
        .push(first.emitted_us);
    state.jobs.insert(client, job.clone())?;

    let worker_job = job.clone();
    let stopped = state.stopped();
    let tracer = Tracer::new(&state.trace, trace);
    tracer.record(|rid| {
        Hop::new(Kind::Request, "server", "worker", pairing::hop(rid, "job"))
            .label(format!("start job {} ({} steps)", id.0, spec.steps))
    });
    tokio::spawn(async move {
        tokio::pin!(stopped);
        for version in 1..=spec.steps {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(spec.step_ms.into())) => {}
                _ = &mut stopped => return,
            }
            let update = JobUpdate {
                job: worker_job.id.clone(),
                version,
                steps: spec.steps,
                done: version == spec.steps,
                emitted_us: server_now_us(),
                payload: "x".repeat(spec.payload_bytes as usize),
            };
            worker_job
                .history
                .lock()
                .expect("job history lock poisoned")
                .push(update.emitted_us);
            // The previous update, payload and all, is dropped here.
            worker_job.latest.send_replace(update);
            if version < spec.steps {
                tracer.record(|rid| {
                    Hop::new(
                        Kind::Event,
                        "worker",
                        "server",
                        pairing::hop(rid, &format!("s{version}")),
                    )
                    .label(format!("progress {version}/{}", spec.steps))
                });
            }
        }
        tracer.record(|rid| {
            Hop::new(Kind::Response, "worker", "server", pairing::hop(rid, "job"))
                .label(format!("done {}/{}", spec.steps, spec.steps))
        });
    });
    Ok(job)
}

/// `POST /api/jobs`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(submit))
}

#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = JobSpec,
    responses((status = 202, description = "Job started", body = JobCreated),
        (status = 400, description = "Malformed JSON", body = ApiError), (status = 413, description = "Body too large", body = ApiError), (status = 415, description = "Content-Type is not application/json", body = ApiError),
        (status = 422, description = "Wrong field types or values out of range", body = ApiError), (status = 429, description = "Over the job creation rate, or this client's jobs are all running or read (Retry-After)", body = ApiError)))]
async fn submit(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    spec: Result<AppJson<JobSpec>, AppError>,
) -> Result<(StatusCode, Json<JobCreated>), AppError> {
    state.job_rate.check(client)?;
    let AppJson(spec) = spec?;
    let job = start(&state, client, spec, trace)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            status_url: format!("/api/jobs/{}", job.id.0),
            job: job.id.clone(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u32) -> Arc<Job> {
        let first = JobUpdate {
            job: JobId(format!("j{n}")),
            version: 0,
            steps: 1,
            done: false,
            emitted_us: 0,
            payload: String::new(),
        };
        Arc::new(Job {
            id: first.job.clone(),
            latest: watch::channel(first).0,
            history: Mutex::default(),
            drop_streams: broadcast::channel(1).0,
        })
    }

    #[test]
    fn a_job_keeps_only_its_latest_payload_and_resumes_after_any_version() {
        let job = job(0);
        let update = |version: u32| JobUpdate {
            job: job.id.clone(),
            version,
            steps: 3,
            done: version == 3,
            emitted_us: 10 * i64::from(version),
            payload: "x".repeat(1_000),
        };
        job.history.lock().unwrap().push(0);
        for version in 1..=2 {
            job.history.lock().unwrap().push(update(version).emitted_us);
            job.latest.send_replace(update(version));
        }
        let all = job.since(0);
        assert_eq!(all.iter().map(|u| u.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(all[0].emitted_us, 10, "an earlier update keeps its time");
        assert!(all[0].payload.is_empty(), "but not its payload");
        assert_eq!(all[1], update(2), "the latest is whole");
        assert_eq!(job.since(1), [update(2)]);
        assert!(job.since(2).is_empty());
        assert!(job.since(u32::MAX).is_empty());
        job.history.lock().unwrap().push(update(3).emitted_us);
        job.latest.send_replace(update(3));
        let resumed = job.since(1);
        assert_eq!(resumed.len(), 2);
        assert!(!resumed[0].done && resumed[0].payload.is_empty());
        assert_eq!(resumed[1], update(3));
    }

    #[test]
    fn jobs_are_capped_and_expire() {
        let store = JobStore::default().with_ttl(Duration::from_millis(500));
        // Held, as a running worker holds its job: none can be evicted.
        let running: Vec<Arc<Job>> = (0..MAX_JOBS as u32).map(job).collect();
        for job in &running {
            store.insert(None, job.clone()).unwrap();
        }
        let refused = store.insert(None, job(99_999)).unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        drop(running);
        std::thread::sleep(Duration::from_millis(600));
        assert!(store.get("j1").is_err(), "an expired job is not served");
        store.insert(None, job(99_999)).unwrap();
        assert_eq!(store.len(), 1, "expired jobs made room");
        std::thread::sleep(Duration::from_millis(600));
        store.prune();
        assert!(store.is_empty(), "the sweep forgets the rest");
    }

    #[test]
    fn a_client_past_its_share_loses_only_its_own_finished_unread_jobs() {
        let client = |n| Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])));
        let store = JobStore::default();
        store.insert(client(2), job(0)).unwrap();
        let mut running: Vec<Arc<Job>> = (1..=JOBS_PER_CLIENT as u32).map(job).collect();
        for job in &running {
            store.insert(client(1), job.clone()).unwrap();
        }
        let AppError::RateLimited { message, .. } = store.insert(client(1), job(100)).unwrap_err()
        else {
            panic!("a 429 with Retry-After")
        };
        assert!(
            message.contains(&format!("one client may hold {JOBS_PER_CLIENT} jobs")),
            "{message}"
        );
        store.insert(client(3), job(101)).unwrap();
        drop(running.remove(0));
        store.insert(client(1), job(102)).unwrap();
        assert!(store.get("j1").is_err(), "its own finished job went");
        assert!(store.get("j2").is_ok(), "its running ones stayed");
        assert!(store.get("j0").is_ok(), "another client's older job stayed");
    }
}
