//! The HTTP control API: read what arrived and steer the scenario from a test in any language.
//!
//! Every endpoint is JSON unless noted. It binds to loopback; a non-loopback address is refused
//! at start-up unless a token is set, and with a token every request must carry
//! `Authorization: Bearer TOKEN`.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /api/health` | `{"status": "ok", "scenario": NAME}` |
//! | `GET /api/messages` | the captured messages: id, envelope, TLS facts, size |
//! | `GET /api/messages/{id}` | one message parsed: headers, subject, text and HTML parts |
//! | `GET /api/messages/{id}/raw` | the message as received, `message/rfc822` |
//! | `DELETE /api/messages` | forget the captured messages |
//! | `GET /api/sessions` | recent sessions with their timed transcripts |
//! | `GET /api/scenario` | the scenario new sessions get |
//! | `PUT /api/scenario` | replace it with a TOML or JSON body; 400 with file:line:column |
//! | `GET /api/counters` | connections, attempts, active sessions, messages |

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::capture::Message;
use crate::scenario::Scenario;
use crate::server::{ControlConfig, ServerHandle};

/// Binds the control listener, refusing a non-loopback address without a token.
pub(crate) async fn bind(config: &ControlConfig) -> io::Result<TcpListener> {
    if !config.addr.ip().is_loopback() && config.token.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the control API would listen on {}, which is not loopback; \
                 give a token (--control-token) so that only its holders can steer the server",
                config.addr
            ),
        ));
    }
    TcpListener::bind(config.addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot bind control API on {}: {e}", config.addr),
        )
    })
}

/// Serves the API until the server shuts down.
pub(crate) async fn serve(listener: TcpListener, server: ServerHandle, token: Option<String>) {
    let addr = listener.local_addr().ok();
    info!(?addr, "control API");
    let stop = server.clone();
    let app = router(server, token);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.shutdown_started().await })
        .await;
    if let Err(e) = result {
        warn!("control API stopped: {e}");
    }
}

#[derive(Clone)]
struct Api {
    server: ServerHandle,
    token: Option<Arc<str>>,
}

/// The routes, with the token check in front of them.
pub fn router(server: ServerHandle, token: Option<String>) -> Router {
    let api = Api {
        server,
        token: token.map(Arc::from),
    };
    Router::new()
        .route("/api/health", get(health))
        .route("/api/messages", get(list_messages).delete(clear_messages))
        .route("/api/messages/{id}", get(parsed_message))
        .route("/api/messages/{id}/raw", get(raw_message))
        .route("/api/sessions", get(sessions))
        .route("/api/scenario", get(get_scenario).put(put_scenario))
        .route("/api/counters", get(counters))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(api.clone(), require_token))
        .with_state(api)
}

async fn require_token(State(api): State<Api>, request: Request, next: Next) -> Response {
    if let Some(token) = &api.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        if !same(given.as_bytes(), token.as_bytes()) {
            return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "that method is not allowed on this endpoint",
    )
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see GET /api/health and the README",
    )
}

async fn health(State(api): State<Api>) -> Response {
    axum::Json(json!({ "status": "ok", "scenario": api.server.scenario().name })).into_response()
}

async fn list_messages(State(api): State<Api>) -> Response {
    axum::Json(api.server.messages()).into_response()
}

async fn clear_messages(State(api): State<Api>) -> Response {
    api.server.clear();
    StatusCode::NO_CONTENT.into_response()
}

fn find(api: &Api, id: &str) -> Result<Arc<Message>, Box<Response>> {
    let id: u64 = id.parse().map_err(|_| {
        let message = format!("message id {id:?} is not a number");
        Box::new(error(StatusCode::BAD_REQUEST, message))
    })?;
    let missing = || {
        Box::new(error(
            StatusCode::NOT_FOUND,
            format!("no message with id {id}"),
        ))
    };
    api.server.capture().message(id).ok_or_else(missing)
}

async fn raw_message(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match find(&api, &id) {
        Ok(message) => (
            [(header::CONTENT_TYPE, "message/rfc822")],
            message.data.clone(),
        )
            .into_response(),
        Err(response) => *response,
    }
}

#[derive(Serialize)]
struct HeaderView {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct AttachmentView {
    name: Option<String>,
    content_type: Option<String>,
    size: usize,
}

#[derive(Serialize)]
struct ParsedView<'a> {
    #[serde(flatten)]
    message: &'a Message,
    headers: Vec<HeaderView>,
    subject: Option<String>,
    from: Vec<String>,
    to: Vec<String>,
    text: Vec<String>,
    html: Vec<String>,
    attachments: Vec<AttachmentView>,
}

fn addresses(address: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    let Some(address) = address else {
        return Vec::new();
    };
    address
        .iter()
        .filter_map(|a| a.address.as_deref().map(str::to_string))
        .collect()
}

async fn parsed_message(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let message = match find(&api, &id) {
        Ok(message) => message,
        Err(response) => return *response,
    };
    let Some(parsed) = mail_parser::MessageParser::default().parse(&message.data[..]) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("message {id} is not a parseable RFC 5322 message; GET its /raw form"),
        );
    };
    let view = ParsedView {
        message: &message,
        headers: parsed
            .headers_raw()
            .map(|(name, value)| HeaderView {
                name: name.to_string(),
                value: value.trim().to_string(),
            })
            .collect(),
        subject: parsed.subject().map(str::to_string),
        from: addresses(parsed.from()),
        to: addresses(parsed.to()),
        text: (0..parsed.text_body_count())
            .filter_map(|i| parsed.body_text(i).map(|t| t.into_owned()))
            .collect(),
        html: (0..parsed.html_body_count())
            .filter_map(|i| parsed.body_html(i).map(|t| t.into_owned()))
            .collect(),
        attachments: parsed
            .attachments()
            .map(|part| AttachmentView {
                name: mail_parser::MimeHeaders::attachment_name(part).map(str::to_string),
                content_type: mail_parser::MimeHeaders::content_type(part).map(|ct| {
                    match &ct.c_subtype {
                        Some(sub) => format!("{}/{}", ct.c_type, sub),
                        None => ct.c_type.to_string(),
                    }
                }),
                size: part.contents().len(),
            })
            .collect(),
    };
    axum::Json(view).into_response()
}

async fn sessions(State(api): State<Api>) -> Response {
    axum::Json(api.server.sessions()).into_response()
}

async fn counters(State(api): State<Api>) -> Response {
    axum::Json(api.server.counters()).into_response()
}

/// The scenario as the API shows it.
#[derive(Serialize)]
struct ScenarioView<'a> {
    name: &'a str,
    summary: &'a str,
    reproduces: &'a crate::scenario::Reproduces,
    server: &'a crate::scenario::ServerSettings,
    tls: &'a crate::scenario::TlsSettings,
    faults: Vec<String>,
    toml: Option<&'a str>,
}

fn view(scenario: &Scenario) -> Value {
    let view = ScenarioView {
        name: &scenario.name,
        summary: &scenario.summary,
        reproduces: &scenario.reproduces,
        server: &scenario.server,
        tls: &scenario.tls,
        faults: scenario.faults.iter().map(|f| f.describe()).collect(),
        toml: scenario.source.as_deref(),
    };
    serde_json::to_value(view).expect("scenarios serialise")
}

async fn get_scenario(State(api): State<Api>) -> Response {
    axum::Json(view(&api.server.scenario())).into_response()
}

async fn put_scenario(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "request body: not UTF-8");
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
        || text.trim_start().starts_with('{');
    let parsed = if json {
        from_json(text)
    } else {
        Scenario::from_toml(text, "request body").map_err(|e| e.to_string())
    };
    match parsed {
        Ok(scenario) => {
            let shown = view(&scenario);
            api.server.switch_scenario(scenario).await;
            axum::Json(shown).into_response()
        }
        Err(message) => {
            warn!("scenario refused: {message}");
            error(StatusCode::BAD_REQUEST, message.to_string())
        }
    }
}

/// A JSON scenario has the same shape as the TOML one. It is turned into TOML and loaded from
/// there, so its mistakes are reported by the same validation; the positions then refer to the
/// TOML form, which the error quotes.
fn from_json(text: &str) -> Result<Scenario, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's message ends with its own "at line L column C"; the position is
        // given once, in front, as everywhere else.
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        format!("request body:{}:{}: {message}", e.line(), e.column())
    })?;
    let toml_value = toml::Value::try_from(&value)
        .map_err(|e| format!("request body: cannot be a scenario: {e}"))?;
    let toml_text = toml::to_string(&toml_value)
        .map_err(|e| format!("request body: cannot be a scenario: {e}"))?;
    Scenario::from_toml(&toml_text, "request body (as TOML)").map_err(|e| {
        let line = e
            .position
            .and_then(|(line, _)| toml_text.lines().nth(line - 1))
            .map(|l| format!(" (at `{}`)", l.trim()))
            .unwrap_or_default();
        format!("{e}{line}")
    })
}
