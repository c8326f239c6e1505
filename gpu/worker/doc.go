// Package worker runs the student engine's models behind a small typed protocol, so that GPU
// inference can live in a child process of the app (`opentracy engine-worker`), as Ollama runs
// its model runner: a CUDA or XLA abort, or the kernel's out-of-memory killer, ends the worker
// and not the gateway. The app restarts it and reports the cause to the requests that were in
// flight; the environment the GPU needs (gpu/runtime's Plan.Environ: the PJRT plugin,
// LD_LIBRARY_PATH) is set when the worker starts, which is the only time the dynamic loader reads it.
//
// # Pieces
//
//   - Engine loads models (weights, a LoRA adapter merged in, tokenizer, chat template) on one
//     GoMLX backend and generates; it serves in-process where isolation buys nothing (the CPU
//     backend).
//   - Server serves the protocol for an Engine on a reader and a writer; Main is the worker
//     process around it.
//   - Client speaks the protocol to a child process it starts, watches and restarts
//     (NewClient), or to a Server on in-process pipes (NewPipeClient, for tests).
//
// Engine and Client are both Runners, so callers do not care where the model runs.
//
// # Protocol
//
// Newline-delimited JSON Messages (protocol.go) on the worker's stdin (requests) and stdout
// (answers), tied by a request id the parent picks. The worker writes its hello (protocol
// version, backend, device) first, once its backend is up. Requests: health (answered by a
// hello), load a model folder (and adapter) under an id (loaded, with what the parent needs to
// plan requests: template, context length, sampling defaults), generate from chat messages or
// prompt token ids with sampling parameters (a delta per token when streaming, then done with
// the usage and finish reason), train a LoRA adapter (train.RunJob, as the CLI does; a
// train_progress per step, then train_done), cancel a request by its id (training stops at a
// step boundary with a checkpoint), unload. Any request may be answered
// by an error with a code. The worker's descriptor 1 points at stderr, so that native libraries
// printing on stdout cannot break the stream; its logs are slog JSON on stderr, which the
// client relays to the app's log and keeps the last lines of for death reports.
//
// # Failure
//
// A worker that dies (its stdout ends) fails every request in flight with a *DeadError
// ("engine worker died: signal: killed (out of memory?); last output: …"); the next request
// starts a new worker, after a pause that grows while workers die young, and models loaded
// through the Client are loaded again in it when next used. A cancelled request (its context)
// sends a cancel and waits for the worker to end it; a worker that does not within CancelWait
// is stuck, and is killed. The worker exits when its stdin ends, so it never outlives the app.
// Training does not restart by itself: the caller sends the train request again with Resume, and
// the new worker continues from the last checkpoint.
package worker
