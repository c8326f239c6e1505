// Package lm runs Qwen3 and Llama 3.x causal language models from a Hugging Face folder on
// GoMLX: the same graph code runs on the pure-Go backend (CPU, tests) and on XLA (CUDA).
//
// # Loading
//
// Load reads config.json (qwen3 or llama, GQA, q/k norms, tied embeddings, rope_theta and
// rope_scaling incl. llama3), generation_config.json and the safetensors weights (single file or
// sharded index, memory-mapped, f32/bf16/f16). Weights go to a gomlx Store under BaseScope with
// their HF names and are not trainable. On the Go backend they are widened to float32; on other
// backends they keep the checkpoint dtype (bf16), with norms, softmax and logits in float32.
// The caller picks the backend: tests set GOMLX_BACKEND=go and import the gobackend package; the
// engine worker imports github.com/gomlx/gomlx/backends/default and sets
// GOMLX_BACKEND=xla:/abs/path/xla_cuda_plugin.so.
//
// # Inference
//
//   - ForwardLogits: full-sequence forward over a padded batch (mask 1 = token, 0 = padding;
//     left or right padding, positions follow the mask like transformers).
//   - NewSession / Session.Step: prefill then one token per step against a KV cache. Prompts are
//     left-padded to a Bucket length and the batch to a power of two, the cache grows through
//     Bucket sizes, so XLA compiles a handful of shapes (see Session for the layout).
//   - Package generate adds sampling, stop sequences and streaming on top of sessions.
//
// # LoRA
//
// NewAdapter / LoadAdapter attach a LoRA adapter (package lora) to the linear layers; it applies
// in every graph built afterwards (forward, sessions, loss). MergeAdapter folds it into the base
// weights for serving; Adapter().Save writes a PEFT folder that PEFT and vLLM load.
//
// # Training (for gpu/train)
//
// The loss graph takes a batch of three [B, T] int32 tensors: ids, mask (1 real token, 0
// padding) and lossMask (1 on the completion tokens whose prediction is trained). It never
// builds a [B, T, V] one-hot: the label logit is gathered and a logsumexp subtracted.
//
//	m, _ := lm.Load(ctx, backend, dir, lm.Options{})
//	m.NewAdapter(lora.Config{Rank: 16, Alpha: 32, Dropout: 0.05})   // or m.LoadAdapter(resumeDir)
//	trainer := train.NewTrainer(backend, m.Store(), m.TrainModelFn(), nil,
//		optimizer.Adam().LearningRate(2e-4).Done(), nil, nil)
//	metrics, err := trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{ids, mask, lossMask}})
//	// metrics[0] is the batch loss. TrainStep frees the batch tensors: build new ones per step.
//	m.Adapter().Save(checkpointDir)                                  // PEFT format
//
// Only the adapter's variables are trainable (m.TrainableVariables()), so the optimizer
// updates and keeps state for LoRA only. Custom objectives (BOND) build their own graph inside a
// gomlx model.Exec on m.Store() from TokenLogProbs / SequenceLogProbs (float32 log p of each
// next token) and call train.AddMainLoss, or pass a function of that shape to train.NewTrainer.
// Pad T with Bucket (and B with BatchBucket) so training compiles few graphs; dropout in the
// adapter is active only in training graphs (the trainer marks them).
package lm
