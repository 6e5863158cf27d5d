//! Request/response beyond HTTP: one browser request whose handler asks a DNS server over UDP
//! (datagrams paired only by their ids; a dropped one retried after a timeout) and PostgreSQL
//! over its wire protocol (Parse, Bind, Execute, Sync and their answers), each on its lifeline.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    protocols::{LookupReport, SERVICES},
    trace::{Actor, Kind, Transport},
};

use crate::{
    model::{catalog, merge::Drawn, metrics::Metric},
    recording::{api, recorder::use_recorder},
    views::{demo_frame::DemoFrame, share::url_param},
};

/// What the two lanes put on the wire in this run: DNS datagrams (and those lost), PostgreSQL
/// messages each way.
pub fn protocol_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let count = |keep: &dyn Fn(&Drawn) -> bool| trace.iter().filter(|d| keep(d)).count();
    let datagrams = count(&|d| {
        d.transport == Transport::Udp && matches!(d.kind, Kind::Request | Kind::Response)
    });
    let lost = count(&|d| d.transport == Transport::Udp && d.kind == Kind::Note);
    let to_pg = count(&|d| d.transport == Transport::Tcp && d.to.0 == "postgres");
    let from_pg = count(&|d| d.transport == Transport::Tcp && d.from.0 == "postgres");
    let metric = Metric::count;
    vec![
        metric("dns-datagrams", "DNS datagrams delivered", datagrams),
        metric("dns-lost", "DNS datagrams lost", lost),
        metric("pg-sent", "messages to PostgreSQL", to_pg),
        metric("pg-received", "messages from PostgreSQL", from_pg),
    ]
}

/// What both lanes answered, as the server reported it.
#[component]
fn Answers(report: ReadSignal<Option<LookupReport>>) -> impl IntoView {
    move || {
        report.get().map(|r| {
            let dns_answer = if r.dns.answers.is_empty() {
                format!("{} {}: {} (no record)", r.dns.name, r.dns.record_type.as_str(), r.dns.outcome)
            } else {
                format!(
                    "{} {}: {} ({})",
                    r.dns.name,
                    r.dns.record_type.as_str(),
                    r.dns.answers.join(", "),
                    r.dns.outcome
                )
            };
            let sql = if !r.sql.enabled {
                view! { <p class="hint" data-testid="sql-off">{r.sql.error.clone().unwrap_or_default()}</p> }
                    .into_any()
            } else if let Some(e) = r.sql.error.clone() {
                view! { <p class="hint" data-testid="sql-error">{format!("SQL lane failed: {e}")}</p> }
                    .into_any()
            } else {
                let rows = r.sql.rows.clone();
                view! {
                    <table class="results" data-testid="sql-rows">
                        <caption>{format!("PostgreSQL answered {} row(s) to: {}", rows.len(), r.sql.sql)}</caption>
                        <thead>
                            <tr><th scope="col">"name"</th><th scope="col">"owner"</th><th scope="col">"port"</th><th scope="col">"note"</th></tr>
                        </thead>
                        <tbody>
                            {rows.into_iter().map(|row| view! {
                                <tr><td>{row.name}</td><td>{row.owner}</td><td>{row.port}</td><td>{row.note}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }
                .into_any()
            };
            view! {
                <div class="protocol-answers">
                    <p data-testid="dns-answer">
                        {format!(
                            "DNS ({} datagrams, {:.0} ms): {dns_answer}",
                            r.dns.datagrams.len(),
                            r.dns.elapsed_ms
                        )}
                    </p>
                    {sql}
                </div>
            }
        })
    }
}

#[component]
pub fn Protocols() -> impl IntoView {
    let recorder = use_recorder();
    let name = url_param("name", "api");
    let record_type = url_param("type", "A");
    let drop_first = url_param("drop_first", "false");
    let status = RwSignal::new(String::new());
    let (report, set_report) = signal(None::<LookupReport>);

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        recorder.start_run();
        set_report.set(None);
        let (name, record_type) = (name.get_untracked(), record_type.get_untracked());
        let drop = drop_first.get_untracked() == "true";
        status.set(format!(
            "Asking the DNS server and PostgreSQL about {name}…{}",
            if drop {
                " (the first DNS query will be lost)"
            } else {
                ""
            }
        ));
        spawn_local(async move {
            match api::protocols_lookup(recorder, &name, &record_type, drop).await {
                Ok(r) => {
                    let sql = match (&r.sql.error, r.sql.enabled) {
                        (_, false) => "the SQL lane is off".to_owned(),
                        (Some(e), true) => format!("SQL failed: {e}"),
                        (None, true) => format!(
                            "{} PostgreSQL messages, {} row(s) in {:.0} ms",
                            r.sql.messages.len(),
                            r.sql.rows.len(),
                            r.sql.elapsed_ms
                        ),
                    };
                    status.set(format!(
                        "Done. DNS: {} datagrams, {} in {:.0} ms. SQL: {sql}.",
                        r.dns.datagrams.len(),
                        r.dns.outcome,
                        r.dns.elapsed_ms
                    ));
                    set_report.set(Some(r));
                }
                Err(e) => status.set(format!("The lookup failed: {e}")),
            }
            recorder.finish_run();
        });
    });

    view! {
        <DemoFrame
            pattern=catalog::find("protocols").expect("catalogued")
            recorder=recorder
            actors=["browser", "server", "dns", "postgres"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/protocols/"
            status=status
            metrics=protocol_metrics
            below=move || view! { <Answers report=report/> }
        >
            <label>
                "Service"
                <select data-testid="param-name" prop:value=move || name.get()
                    on:change=move |ev| name.set(event_target_value(&ev))>
                    {SERVICES.iter().map(|s| view! { <option value=*s>{*s}</option> }).collect_view()}
                    <option value="nowhere">"nowhere (not in the zone or the table)"</option>
                </select>
            </label>
            <label>
                "DNS record"
                <select data-testid="param-type" prop:value=move || record_type.get()
                    on:change=move |ev| record_type.set(event_target_value(&ev))>
                    <option value="A">"A (IPv4 address)"</option>
                    <option value="AAAA">"AAAA (IPv6 address)"</option>
                    <option value="TXT">"TXT (text)"</option>
                </select>
            </label>
            <label class="check">
                <input data-testid="param-drop" type="checkbox"
                    prop:checked=move || drop_first.get() == "true"
                    on:change=move |ev| drop_first.set(event_target_checked(&ev).to_string())/>
                "Lose the first DNS datagram (see the resolver's timeout and retry)"
            </label>
        </DemoFrame>
    }
}
