// Package local serves the models on this machine through the gateway as "local/<name>": the
// model folders in DATA_DIR/models (as gpu/hub lays them out) and the trained students in
// DATA_DIR/students (a PEFT LoRA adapter on one of those models). It is the provider of type
// "local", built in: the server adds it without configuration.
//
// # Names
//
// A model folder is served under its folder name ("local/Qwen--Qwen3-0.6B"; the repository form
// "local/Qwen/Qwen3-0.6B" is accepted too); a student under the name it was published with
// ("local/support-bot"). Only folders whose download finished (gpu/hub's manifest) and whose
// family the engine runs (Qwen3, Llama 3.x) are served. Registry lists, publishes and removes
// students; the distillation step publishes through it.
//
// # Serving
//
// POST /v1/chat/completions renders the messages with the model's chat template (package
// gpu/engine/chat; tools too), tokenizes them and generates (package gpu/engine/generate):
//
//   - temperature, top_p and top_k (an extension, as in vLLM) default to the model's
//     generation_config.json, then to OpenAI's defaults (1, 1, off); seed makes sampling
//     reproducible; max_completion_tokens, else max_tokens, bounds the answer, which otherwise runs
//     to the end of the context; stop sequences end it and are not part of it.
//   - n > 1 and logprobs are refused with a 400; response_format asks for JSON in the system
//     prompt (not enforced); tool_choice "none" leaves the tools out, other choices are not
//     enforced.
//   - Qwen3 thinks only when asked: enable_thinking is false unless the request has
//     reasoning_effort (other than "none") or chat_template_kwargs.enable_thinking. The thinking
//     comes back as reasoning_content, as DeepSeek-style clients read it.
//   - Tool calls the model writes (Qwen3's <tool_call> blocks, Llama 3.1's JSON answer) come back
//     as tool_calls with finish_reason "tool_calls".
//   - Usage counts the rendered prompt's tokens and every sampled token, the end-of-turn token
//     included. Local models cost nothing (pricing lists "local" as free).
//   - stream: true answers with OpenAI's chunk stream: the role first, content deltas, the
//     finish_reason chunk, the usage chunk when stream_options.include_usage, then [DONE].
//     Closing the stream, or cancelling the request, stops generation at the next token.
//
// Errors are in OpenAI's shape: an unknown model is a 404 (model_not_found), a folder that cannot
// be served a 404 (model_not_supported) or 503 (model_not_ready: download unfinished, base of a
// student missing), a model that fails to load a 503 (model_load_failed; the failure is kept for
// 30 s, or until the model changes on disk, so that the gateway's retries do not load a broken
// model three times), a prompt longer than the context a 400 (context_length_exceeded).
//
// # Resources
//
// Models load on first use and stay loaded; at most MaxLoaded (default 1, or
// $OPENTRACY_LOCAL_MAX_LOADED) are kept, the least recently used is unloaded first (once its
// requests end). A student loads as its base model with the adapter merged into the weights, so it
// runs at the base model's speed. A change on disk (a new download, a student published again
// under a removed name) is seen by the next request, which reloads.
//
// Requests to one model are served one at a time, in arrival order: a single generation already
// uses every core of the CPU backend, and on a GPU the KV cache of concurrent requests would have
// to fit beside the weights. Requests to different loaded models run concurrently.
//
// # Where models run
//
// $GOMLX_BACKEND, when set, names the backend ("go", or "xla:/abs/path/xla_cuda_plugin.so" with
// the NVIDIA libraries on LD_LIBRARY_PATH). Otherwise Options.Engine (the config's engine
// section) is resolved by gpu/runtime against the GPU found and the GPU runtime installed in
// Options.RuntimeDir: the GPU when both are there (or asked for with xla:cuda), else the CPU.
//
// The CPU backend runs in the app's process (package gpu/worker's Engine). A GPU backend runs
// in an `opentracy engine-worker` child process (gpu/worker's Client), started with the plan's
// environment, so that a CUDA abort or the out-of-memory killer ends the worker and not the
// gateway: the requests in flight fail with the cause (a 503 engine_worker_died, or an error
// event in a stream that had started) and the next request starts a new worker, which loads
// the model again. Options.Isolate puts the CPU backend in the worker too.
package local
