//! The workspace index job started by `initialized`: `workspace/index` on the root as a
//! streamed call, shown to the editor as LSP work-done progress — a
//! `window/workDoneProgress/create` request (only when the editor advertised
//! `window.workDoneProgress`), then `$/progress` begin, a report per change of the percentage
//! built from the index's `{"files_done", "files_total"}` partials, and end — plus a
//! `window/logMessage` line with the outcome. The index runs while the editor decides about
//! the token; progress starts only once the editor has created it, as LSP requires.

use std::path::PathBuf;

use futures::StreamExt;
use hearth_client::protocol::from_msgpack;
use hearth_client::{Client, StreamEvent};
use lsp_types as lsp;

use crate::gateway::{EditorCalls, Out, methods};
use crate::mapping::{Index, IndexProgress, IndexStats};

/// The progress token of the gateway's (one) index job.
const TOKEN: &str = "hearth-lsp/index";

pub(crate) struct IndexJob {
    pub(crate) client: Client,
    pub(crate) out: Out,
    pub(crate) calls: EditorCalls,
    pub(crate) root: PathBuf,
    pub(crate) progress: bool,
}

/// Whether progress is being shown, and what was last reported.
struct Shown {
    begun: bool,
    percentage: Option<u32>,
}

impl IndexJob {
    pub(crate) async fn run(self) {
        let token = lsp::NumberOrString::String(TOKEN.to_owned());
        let mut created = if self.progress {
            let params = lsp::WorkDoneProgressCreateParams {
                token: token.clone(),
            };
            Some(
                self.calls
                    .call(&self.out, "window/workDoneProgress/create", &params)
                    .await,
            )
        } else {
            None
        };
        let mut shown = Shown {
            begun: false,
            percentage: None,
        };
        let mut latest: Option<u32> = None;
        let mut stream = self
            .client
            .request(methods::WORKSPACE_INDEX, &Index { root: &self.root })
            .stream();
        let outcome = loop {
            tokio::select! {
                answer = async {
                    match created.as_mut() {
                        Some(rx) => rx.await,
                        None => std::future::pending().await,
                    }
                }, if created.is_some() => {
                    created = None;
                    if matches!(answer, Ok(Ok(_))) {
                        self.begin(&token, &mut shown, latest).await;
                    }
                }
                event = stream.next() => match event {
                    Some(Ok(StreamEvent::Partial { chunk, .. })) => {
                        if let Ok(p) = from_msgpack::<IndexProgress>(&chunk) {
                            latest = percentage(&p);
                            self.report(&token, &mut shown, &p).await;
                        }
                    }
                    Some(Ok(StreamEvent::Result(bytes))) => {
                        break from_msgpack::<IndexStats>(&bytes)
                            .map_err(|e| format!("cannot read the daemon's answer: {e}"));
                    }
                    Some(Err(e)) => break Err(e.to_string()),
                    None => break Err("the index call ended without a result".to_owned()),
                },
            }
        };
        // The index can finish before the editor answered: wait for that answer, so that
        // begin and end still pair up.
        if let Some(rx) = created
            && matches!(rx.await, Ok(Ok(_)))
        {
            self.begin(&token, &mut shown, latest).await;
        }
        let (typ, text) = match &outcome {
            Ok(stats) => (
                lsp::MessageType::INFO,
                format!(
                    "indexed {} files ({} identifiers) in {} ms",
                    stats.files, stats.identifiers, stats.ms
                ),
            ),
            Err(e) => (lsp::MessageType::WARNING, format!("indexing failed: {e}")),
        };
        if shown.begun {
            let end = lsp::WorkDoneProgress::End(lsp::WorkDoneProgressEnd {
                message: Some(text.clone()),
            });
            self.send_progress(&token, end).await;
        }
        let root = self.root.display();
        let params = lsp::LogMessageParams {
            typ,
            message: format!("hearth lsp: {root}: {text}"),
        };
        self.out.notify("window/logMessage", &params).await;
    }

    async fn begin(&self, token: &lsp::NumberOrString, shown: &mut Shown, latest: Option<u32>) {
        shown.begun = true;
        shown.percentage = latest.or(Some(0));
        let begin = lsp::WorkDoneProgress::Begin(lsp::WorkDoneProgressBegin {
            title: "hearth: indexing".to_owned(),
            cancellable: Some(false),
            message: Some(self.root.display().to_string()),
            percentage: shown.percentage,
        });
        self.send_progress(token, begin).await;
    }

    async fn report(&self, token: &lsp::NumberOrString, shown: &mut Shown, p: &IndexProgress) {
        let pct = percentage(p);
        if !shown.begun || pct == shown.percentage {
            return;
        }
        shown.percentage = pct;
        let report = lsp::WorkDoneProgress::Report(lsp::WorkDoneProgressReport {
            cancellable: Some(false),
            message: Some(format!("{}/{} files", p.files_done, p.files_total)),
            percentage: pct,
        });
        self.send_progress(token, report).await;
    }

    async fn send_progress(&self, token: &lsp::NumberOrString, value: lsp::WorkDoneProgress) {
        let params = lsp::ProgressParams {
            token: token.clone(),
            value: lsp::ProgressParamsValue::WorkDone(value),
        };
        self.out.notify("$/progress", &params).await;
    }
}

/// Files done as a percentage of files found (none found yet: none).
fn percentage(p: &IndexProgress) -> Option<u32> {
    if p.files_total == 0 {
        return None;
    }
    let pct = p.files_done.min(p.files_total).saturating_mul(100) / p.files_total;
    u32::try_from(pct).ok()
}
