#!/usr/bin/env python3
"""Benchmark the student engine (opentracy model ...) against transformers + peft on one GPU.

One run, no network. The orchestrating process never imports torch: every transformers stage
runs in a child process of this script (so it has its own timeout, and the GPU memory it took is
released before our binary runs), and every engine stage is a call of the opentracy binary.

Stages:
  model    a random-weight Qwen3-0.6B-shaped model, bf16 safetensors, built with transformers
  logits   our logits (opentracy model logits) vs transformers' on the same ids (bf16 and fp32)
  train    LoRA training tokens/s at --seq/--batch (r=16, all linear layers, AdamW), ours vs peft
  decode   batch-1 greedy decode tokens/s (256 new tokens), ours vs transformers' generate
  roofline measured device-to-device copy bandwidth and the bytes read per decoded token

See README.md beside this file. `--dry-run --tiny` runs it all on the CPU with a tiny model
(GOMLX_BACKEND=go); what needs torch is skipped when torch is not installed.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import random
import re
import site
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

# Qwen3-0.6B's shape (its config.json), with random weights.
QWEN3_06B = dict(
    hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
    num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True,
    rope_theta=1e6, max_position_embeddings=40960, rms_norm_eps=1e-6,
)
# Same family, tiny: for --tiny runs on the CPU.
TINY = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=16, vocab_size=384, tie_word_embeddings=True,
    rope_theta=1e6, max_position_embeddings=1024, rms_norm_eps=1e-6,
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RESULT_PREFIX = "BENCH-RESULT "
# Logits checks. bf16: two bf16 implementations round differently, so ours is judged by its
# distance from transformers' float32 logits, which must be within this factor of transformers'
# own bf16 distance from them. float32: our float32 graph against transformers' float32; XLA runs
# float32 matmuls as TF32 on tensor cores, hence not 1e-5.
BF16_SLACK = 1.25
FP32_TARGET = 5e-3


# ---------------------------------------------------------------------------------------------
# Orchestration (standard library only)


class Log:
    """Prints to stdout and appends to OUT/bench.log."""

    def __init__(self, path: Path):
        self.f = open(path, "a", encoding="utf-8")

    def __call__(self, *parts):
        line = time.strftime("%H:%M:%S ") + " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def site_dirs() -> list[str]:
    """The Python package folders to search for the PJRT plugin and NVIDIA libraries."""
    dirs = []
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # some virtualenvs
        pass
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    out = []
    for d in dirs:
        if d and os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def find_plugins(dirs: list[str]) -> list[str]:
    """xla_cuda_plugin.so files of JAX's CUDA PJRT packages (jax-cuda12-pjrt, jax-cuda13-pjrt)."""
    patterns = [
        "jax_plugins/*/xla_cuda_plugin.so",
        "jax_cuda*_plugin/xla_cuda_plugin.so",
        "jax_cuda*_pjrt/xla_cuda_plugin.so",
        "*/xla_cuda_plugin.so",
    ]
    found = []
    for d in dirs:
        for p in patterns:
            for f in sorted(glob.glob(os.path.join(d, p))):
                f = os.path.realpath(f)
                if f not in found:
                    found.append(f)
    return found


def cuda_major_of(path: str) -> int:
    m = re.search(r"cuda(\d+)", path)
    return int(m.group(1)) if m else 0


def nvidia_root(dirs: list[str]) -> str | None:
    """The site-packages/nvidia folder of the nvidia-* wheels (torch's CUDA libraries)."""
    for d in dirs:
        root = os.path.join(d, "nvidia")
        if glob.glob(os.path.join(root, "*", "lib")):
            return root
    return None


def nvidia_lib_dirs(root: str) -> list[str]:
    return [d for d in sorted(glob.glob(os.path.join(root, "*", "lib")))
            if any(".so" in f for f in os.listdir(d))]


def cudart_major(root: str) -> int:
    for f in glob.glob(os.path.join(root, "cuda_runtime", "lib", "libcudart.so.*")):
        m = re.search(r"libcudart\.so\.(\d+)", f)
        if m:
            return int(m.group(1))
    return 0


def cuda_data_dir(root: str) -> str:
    """The folder XLA wants in --xla_gpu_cuda_data_dir: the one with bin/ptxas, else the root."""
    for d in (root, os.path.join(root, "cuda_nvcc")):
        if os.path.isfile(os.path.join(d, "bin", "ptxas")):
            return d
    return root


def engine_env(args, log: Log) -> tuple[dict, dict]:
    """The environment our binary runs with, and what was found (for the report)."""
    env = dict(os.environ)
    info: dict = {}
    dirs = site_dirs()
    info["site_dirs"] = dirs
    plugins = find_plugins(dirs)
    info["plugins_found"] = plugins
    root = args.nvidia_dir or nvidia_root(dirs)
    info["nvidia_dir"] = root
    if args.dry_run:
        env["GOMLX_BACKEND"] = "go"
        env["GOMLX_NO_AUTO_INSTALL"] = "1"
        info["backend"] = "go"
        log("dry run: GOMLX_BACKEND=go;", len(plugins), "PJRT plugin(s) found:", plugins or "-")
        return env, info
    plugin = args.plugin
    if not plugin:
        if not plugins:
            raise RuntimeError("no xla_cuda_plugin.so found in " + ", ".join(dirs) +
                               " (install jax-cuda12-pjrt or jax-cuda13-pjrt, or pass --plugin)")
        want = cudart_major(root) if root else 0
        matching = [p for p in plugins if cuda_major_of(p) == want]
        plugin = (matching or plugins)[0]
    plugin = os.path.abspath(plugin)
    env["GOMLX_BACKEND"] = "xla:" + plugin
    env["GOMLX_NO_AUTO_INSTALL"] = "1"
    if root:
        data_dir = cuda_data_dir(root)
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_gpu_cuda_data_dir")]
        env["XLA_FLAGS"] = " ".join(flags + ["--xla_gpu_cuda_data_dir=" + data_dir])
        libs = nvidia_lib_dirs(root)
        old = [d for d in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d and d not in libs]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + old)
        info["cuda_data_dir"], info["lib_dirs"] = data_dir, libs
    else:
        log("warning: no site-packages/nvidia folder: the plugin must find CUDA on the system")
    info["backend"] = env["GOMLX_BACKEND"]
    for k in ("GOMLX_BACKEND", "XLA_FLAGS", "LD_LIBRARY_PATH"):
        log(f"{k}={env.get(k, '')}")
    return env, info


def run_logged(name: str, argv: list[str], env: dict, timeout: float, out: Path, log: Log,
               want_json: bool = True) -> dict:
    """Runs a command with a timeout, keeps its output under OUT/logs, and returns the JSON of
    its last stdout line that holds one (a child's RESULT line, or our bench's report)."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log(f"[{name}] $", " ".join(argv))
    start = time.time()
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        (logs / f"{name}.out").write_text(stdout)
        (logs / f"{name}.err").write_text(stderr)
        raise RuntimeError(f"timed out after {timeout:.0f}s (logs/{name}.err)")
    (logs / f"{name}.out").write_text(stdout)
    (logs / f"{name}.err").write_text(stderr)
    log(f"[{name}] exit {rc} in {time.time() - start:.1f}s")
    if rc != 0:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"exit {rc}: {lines[-1] if lines else '(no stderr)'} (logs/{name}.err)")
    if not want_json:
        return {"stdout": stdout.strip()}
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith(RESULT_PREFIX):
            line = line[len(RESULT_PREFIX):]
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON result in the output (logs/{name}.out)")


def child(name: str, params: dict, args, out: Path, log: Log, timeout: float) -> dict:
    """Runs a transformers stage of this script in a child Python process."""
    argv = [sys.executable, os.path.abspath(__file__), "--child", name, "--child-params", json.dumps(params)]
    env = dict(os.environ)
    if args.dry_run:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, as our side
    return run_logged("hf_" + name, argv, env, timeout, out, log)


def read_npy_shape(path: Path) -> tuple[list[int], str]:
    """Shape and dtype of a .npy file, from its header (no NumPy needed)."""
    with open(path, "rb") as f:
        magic = f.read(8)
        if magic[:6] != b"\x93NUMPY":
            raise ValueError(f"{path} is not a .npy file")
        (hlen,) = struct.unpack("<H", f.read(2)) if magic[6] == 1 else struct.unpack("<I", f.read(4))
        header = f.read(hlen).decode("latin1")
    shape = [int(x) for x in re.search(r"'shape':\s*\(([^)]*)\)", header).group(1).replace(" ", "").split(",") if x]
    dtype = re.search(r"'descr':\s*'([^']+)'", header).group(1)
    return shape, dtype


def param_count(cfg: dict) -> int:
    """Parameters of a Qwen3 model from its config (embeddings counted once when tied)."""
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    d = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h + 2 * d
    emb = cfg["vocab_size"] * h * (1 if cfg.get("tie_word_embeddings") else 2)
    return emb + layers * per_layer + h


def decode_bytes_per_token(cfg: dict, prompt_len: int, new_tokens: int, dtype_bytes: int = 2) -> dict:
    """Bytes a batch-1 decode step reads from memory, on average over the generation: every
    weight once (the embedding row gather is negligible; a tied lm_head reads the matrix) plus
    the KV cache so far."""
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    weights = param_count(cfg) * dtype_bytes
    kv_per_pos = 2 * cfg["num_hidden_layers"] * cfg["num_key_value_heads"] * d * dtype_bytes
    mean_len = prompt_len + (new_tokens + 1) / 2
    return {"weights": weights, "kv_cache_mean": kv_per_pos * mean_len, "total": weights + kv_per_pos * mean_len}


def fmt(v, spec=".0f"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return format(v, spec)


def table(res: dict) -> str:
    """The compact summary printed at the end."""
    rows = [("metric", "ours", "transformers", "ratio ours/hf")]

    def get(stage, *keys):
        v = res.get(stage, {})
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    def ratio(a, b):
        return f"{a / b:.2f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "-"

    lg = res.get("logits", {})
    cmp_ = lg.get("compare") or {}
    if cmp_ and not cmp_.get("error"):
        rows.append(("bf16 logits rel. L2 err vs hf fp32", fmt(cmp_.get("rel_l2_ours_vs_hf_fp32"), ".2e"),
                     fmt(cmp_.get("rel_l2_hf_bf16_vs_hf_fp32"), ".2e"),
                     f"{'ok' if cmp_.get('pass_bf16') else 'ABOVE TARGET'} (<= {cmp_.get('bf16_slack')}x hf)"))
        rows.append(("bf16 logits rel. L2 err vs hf bf16", fmt(cmp_.get("rel_l2_ours_vs_hf_bf16"), ".2e"), "-", "-"))
        rows.append(("bf16 logits argmax agreement vs hf bf16", fmt(cmp_.get("argmax_agree_ours_vs_hf_bf16"), ".3f"),
                     fmt(cmp_.get("argmax_agree_hf_bf16_vs_fp32"), ".3f") + " (vs hf fp32)", "-"))
        if "rel_l2_ours_fp32_vs_hf_fp32" in cmp_:
            rows.append(("fp32 logits rel. L2 err vs hf fp32", fmt(cmp_.get("rel_l2_ours_fp32_vs_hf_fp32"), ".2e"), "-",
                         f"{'ok' if cmp_.get('pass_fp32') else 'ABOVE TARGET'} (<= {cmp_.get('fp32_target'):g})"))
    else:
        rows.append(("logits", "shape " + str(get("logits", "ours", "shape")) if get("logits", "ours") else lg.get("error", "-"), "-", "-"))

    t_ours, t_hf = get("train", "ours", "tokens_per_s"), get("train", "hf", "tokens_per_s")
    rows.append((f"LoRA train tok/s (seq {res.get('params', {}).get('seq')}, batch {res.get('params', {}).get('batch')})",
                 fmt(t_ours), fmt(t_hf), ratio(t_ours, t_hf)))
    rows.append(("train peak memory GB", "-", fmt(get("train", "hf", "peak_mem_gb"), ".1f"), "-"))
    d_ours, d_hf = get("decode", "ours", "tokens_per_s"), get("decode", "hf", "tokens_per_s")
    rows.append((f"decode tok/s (batch 1, {res.get('params', {}).get('decode_tokens')} new)", fmt(d_ours, ".1f"), fmt(d_hf, ".1f"), ratio(d_ours, d_hf)))
    if get("decode", "ours", "step_ms") is not None:
        rows.append(("decode step ms (device call + logits read)", fmt(get("decode", "ours", "step_ms"), ".2f"), "-", "-"))
        rows.append(("decode host ms per token (sampling etc.)", fmt(get("decode", "ours", "host_ms_per_token"), ".3f"), "-", "-"))
    per_token = get("roofline", "bytes_per_token")
    if per_token:
        rows.append(("decode bytes read per token (MB)", fmt(per_token["total"] / 1e6, ".1f"), "", ""))
    bound = get("roofline", "tokens_per_s_bound")
    if bound:
        rows.append(("decode bandwidth bound tok/s", fmt(bound, ".0f"),
                     f"{get('roofline', 'copy_gb_s'):.0f} GB/s / {get('roofline', 'bytes_per_token')['total'] / 1e6:.0f} MB",
                     "-"))
        rows.append(("decode as % of bound", fmt(100 * d_ours / bound if d_ours else None, ".1f"),
                     fmt(100 * d_hf / bound if d_hf else None, ".1f"), "-"))
    for name in ("model", "logits", "train", "decode", "roofline"):
        for side in ("ours", "hf", "compare", ""):
            v = res.get(name, {}).get(side) if side else res.get(name, {})
            if isinstance(v, dict) and v.get("error"):
                what = "skipped" if v["error"].startswith("skipped") else "FAILED"
                rows.append((f"{name} {side}".strip() + " " + what, v["error"][:70], "", ""))
    widths = [max(len(str(r[c])) for r in rows) for c in range(4)]
    lines = ["  ".join(str(r[c]).ljust(widths[c]) for c in range(4)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stage(res: dict, key: str, side: str | None, log: Log, fn):
    """Runs one stage; a failure is recorded and the others go on."""
    label = f"{key}/{side}" if side else key
    start = time.time()
    try:
        v = fn()
        v = v if isinstance(v, dict) else {"value": v}
        v.setdefault("seconds", round(time.time() - start, 2))
    except Exception as e:  # noqa: BLE001 -- one stage's failure must not lose the others
        log(f"[{label}] FAILED: {e}")
        (Path(res["_out"]) / "logs" / f"{label.replace('/', '_')}.traceback").write_text(traceback.format_exc())
        v = {"error": str(e)}
    if side:
        res.setdefault(key, {})[side] = v
    else:
        res.setdefault(key, {}).update(v)
    return v


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin/opentracy-server", help="the opentracy binary (make server)")
    ap.add_argument("--out", default=os.environ.get("OUT") or "bench-out", help="output folder (default $OUT or ./bench-out)")
    ap.add_argument("--dry-run", action="store_true", help="CPU only: GOMLX_BACKEND=go, no CUDA stages")
    ap.add_argument("--tiny", action="store_true", help="a tiny model and small shapes instead of Qwen3-0.6B's")
    ap.add_argument("--plugin", help="xla_cuda_plugin.so to use (default: found in site-packages)")
    ap.add_argument("--nvidia-dir", help="folder of the NVIDIA libraries (default: site-packages/nvidia)")
    ap.add_argument("--seq", type=int, help="training sequence length (default 1024; 64 with --tiny)")
    ap.add_argument("--batch", type=int, help="training batch (default 4; 2 with --tiny)")
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank (alpha 2*rank)")
    ap.add_argument("--train-steps", type=int, help="timed training steps (default 5; 2 with --tiny)")
    ap.add_argument("--train-warmup", type=int, default=2, help="untimed training steps first (compilation)")
    ap.add_argument("--decode-tokens", type=int, help="new tokens per decode run (default 256; 16 with --tiny)")
    ap.add_argument("--decode-runs", type=int, default=3, help="timed decode runs (median reported)")
    ap.add_argument("--prompt-len", type=int, default=16, help="decode prompt tokens")
    ap.add_argument("--logit-tokens", type=int, default=32, help="sequence length of the logits comparison")
    ap.add_argument("--stages", default="model,logits,train,decode,roofline", help="stages to run, comma-separated")
    ap.add_argument("--model-dir", help="reuse this model folder instead of building one")
    ap.add_argument("--timeout", type=float, default=600, help="seconds each stage may take (a side of it)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-params", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return run_child(args.child, json.loads(args.child_params or "{}"))

    tiny = args.tiny
    seq = args.seq or (64 if tiny else 1024)
    batch = args.batch or (2 if tiny else 4)
    train_steps = args.train_steps or (2 if tiny else 5)
    decode_tokens = args.decode_tokens or (16 if tiny else 256)
    stages = set(args.stages.split(","))
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    log = Log(out / "bench.log")
    binary = str(Path(args.bin).resolve())
    has_torch = importlib.util.find_spec("torch") is not None
    res: dict = {"_out": str(out), "params": {
        "tiny": tiny, "dry_run": args.dry_run, "seq": seq, "batch": batch, "rank": args.rank,
        "train_steps": train_steps, "train_warmup": args.train_warmup, "decode_tokens": decode_tokens,
        "decode_runs": args.decode_runs, "prompt_len": args.prompt_len, "torch": has_torch,
    }}
    log("bench: out", out, "| binary", binary, "| torch", "yes" if has_torch else "NOT INSTALLED: transformers stages skipped")
    if not os.access(binary, os.X_OK):
        log(f"binary {binary} is missing: build it with `make server` or pass --bin")
        return 2
    skip = {"error": "skipped: torch is not installed"}

    env, envinfo = {}, {}
    try:
        env, envinfo = engine_env(args, log)
    except Exception as e:  # noqa: BLE001 -- reported; our stages then fail on their own
        log("engine environment:", e)
        envinfo["error"] = str(e)
        env = dict(os.environ)
    res["environment"] = envinfo

    # model --------------------------------------------------------------------------------
    shape = TINY if tiny else QWEN3_06B
    model_dir = Path(args.model_dir).resolve() if args.model_dir else out / ("model-tiny" if tiny else "model-qwen3-0.6b")
    if args.model_dir:
        res["model"] = {"dir": str(model_dir), "reused": True}
    elif "model" in stages:
        if has_torch:
            stage(res, "model", None, log, lambda: child(
                "build_model", {"dir": str(model_dir), "shape": shape, "seed": 0, "dry_run": args.dry_run},
                args, out, log, args.timeout))
        else:  # no torch: our own tiny model, so the engine stages still run
            def init_tiny():
                run_logged("init_tiny", [binary, "model", "init-tiny", "--family", "qwen3", "--dtype", "bfloat16",
                                         "--out", str(model_dir)], env, args.timeout, out, log, want_json=False)
                return {"dir": str(model_dir), "built_by": "opentracy model init-tiny"}
            stage(res, "model", None, log, init_tiny)
    cfg = {}
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
        res.setdefault("model", {})["params"] = param_count(cfg)
    except Exception as e:  # noqa: BLE001
        log("no model config:", e)

    # logits -------------------------------------------------------------------------------
    if "logits" in stages and cfg:
        rng = random.Random(0)
        ids = [rng.randrange(cfg["vocab_size"]) for _ in range(args.logit_tokens)]
        ours_npy = out / "logits-ours.npy"
        ours_fp32_npy = out / "logits-ours-fp32.npy"

        def ours_logits(name, npy, extra):
            def run():
                rep = run_logged(name, [binary, "model", "logits", "--model", str(model_dir), "--ids",
                                        ",".join(map(str, ids)), "--out", str(npy)] + extra, env, args.timeout, out, log)
                npy_shape, dtype = read_npy_shape(npy)
                if npy_shape != [1, len(ids), cfg["vocab_size"]] or dtype != "<f4":
                    raise RuntimeError(f"logits file has shape {npy_shape} {dtype}")
                rep["shape"] = npy_shape
                return rep
            return run
        # The checkpoint's dtype (bf16), and float32 weights: the second checks the graph's math
        # apart from bf16 rounding.
        stage(res, "logits", "ours", log, ours_logits("ours_logits", ours_npy, []))
        stage(res, "logits", "ours_fp32", log, ours_logits("ours_logits_fp32", ours_fp32_npy, ["--dtype", "float32"]))
        if has_torch and not res["logits"]["ours"].get("error"):
            fp32 = str(ours_fp32_npy) if not res["logits"]["ours_fp32"].get("error") else None
            stage(res, "logits", "compare", log, lambda: child(
                "compare_logits", {"dir": str(model_dir), "ids": ids, "ours": str(ours_npy), "ours_fp32": fp32,
                                   "bf16_slack": BF16_SLACK, "fp32_target": FP32_TARGET},
                args, out, log, args.timeout))
        elif not has_torch:
            res["logits"]["compare"] = skip

    # train --------------------------------------------------------------------------------
    if "train" in stages and cfg:
        stage(res, "train", "ours", log, lambda: run_logged("ours_train", [
            binary, "model", "bench", "--model", str(model_dir), "--mode", "train", "--seq", str(seq),
            "--batch", str(batch), "--steps", str(train_steps), "--warmup", str(args.train_warmup),
            "--rank", str(args.rank)], env, args.timeout, out, log))
        if has_torch:
            stage(res, "train", "hf", log, lambda: child("train", {
                "dir": str(model_dir), "seq": seq, "batch": batch, "steps": train_steps,
                "warmup": args.train_warmup, "rank": args.rank}, args, out, log, args.timeout))
        else:
            res["train"]["hf"] = skip

    # decode -------------------------------------------------------------------------------
    if "decode" in stages and cfg:
        stage(res, "decode", "ours", log, lambda: run_logged("ours_decode", [
            binary, "model", "bench", "--model", str(model_dir), "--mode", "decode", "--batch", "1",
            "--max-new-tokens", str(decode_tokens), "--prompt-len", str(args.prompt_len),
            "--steps", str(args.decode_runs), "--warmup", "1", "--cpuprofile", str(out / "logs" / "ours_decode.pprof")],
            env, args.timeout, out, log))
        if has_torch:
            stage(res, "decode", "hf", log, lambda: child("decode", {
                "dir": str(model_dir), "new_tokens": decode_tokens, "prompt_len": args.prompt_len,
                "runs": args.decode_runs}, args, out, log, args.timeout))
        else:
            res["decode"]["hf"] = skip

    # roofline -----------------------------------------------------------------------------
    if "roofline" in stages and cfg:
        per_token = decode_bytes_per_token(cfg, args.prompt_len, decode_tokens)
        res["roofline"] = {"bytes_per_token": per_token}
        if args.dry_run:
            res["roofline"]["note"] = "dry run: no GPU bandwidth measured"
        elif has_torch:
            def roofline():
                bw = child("bandwidth", {}, args, out, log, args.timeout)
                bw["tokens_per_s_bound"] = bw["copy_gb_s"] * 1e9 / per_token["total"]
                return bw
            stage(res, "roofline", None, log, roofline)
        else:
            res["roofline"].update(skip)

    res.pop("_out", None)
    (out / "results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    summary = table(res)
    (out / "summary.txt").write_text(summary + "\n")
    log("results in", out / "results.json")
    print("\n" + summary, flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# Child stages (torch, transformers, peft); each prints one RESULT line.


def run_child(name: str, p: dict) -> int:
    fn = {"build_model": child_build_model, "compare_logits": child_compare_logits, "train": child_train,
          "decode": child_decode, "bandwidth": child_bandwidth}[name]
    result = fn(p)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def _device():
    import torch
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync():
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _versions() -> dict:
    import torch
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    for mod in ("transformers", "peft"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def _load(model_dir: str, dtype):
    from transformers import AutoModelForCausalLM
    try:
        m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    except TypeError:  # transformers before the torch_dtype → dtype rename
        m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype)
    return m.to(_device())


def child_build_model(p: dict) -> dict:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM
    torch.manual_seed(p["seed"])
    cfg = Qwen3Config(**p["shape"])
    with torch.device(_device()):  # initialising 0.6B parameters on the GPU takes seconds, not minutes
        model = Qwen3ForCausalLM(cfg)
    model = model.to(torch.bfloat16)
    model.config.eos_token_id = None  # no tokenizer: nothing ends generation early
    try:
        model.save_pretrained(p["dir"], safe_serialization=True)
    except TypeError:  # releases where safetensors is the only format
        model.save_pretrained(p["dir"])
    n = sum(t.numel() for t in model.parameters())
    return {"dir": p["dir"], "params_torch": n, "built_by": "transformers", **_versions()}


def _read_npy(path: str):
    import numpy as np
    return np.load(path)


def child_compare_logits(p: dict) -> dict:
    import torch
    ids = torch.tensor([p["ids"]], device=_device())
    ours = torch.from_numpy(_read_npy(p["ours"])).float().to(_device())
    ours_fp32 = torch.from_numpy(_read_npy(p["ours_fp32"])).float().to(_device()) if p.get("ours_fp32") else None
    out = {}
    with torch.no_grad():
        ref = {}
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            m = _load(p["dir"], dtype).eval()
            ref[name] = m(input_ids=ids).logits.float()
            del m
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

        def rel(a, b):
            return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))
        out["rel_l2_ours_vs_hf_bf16"] = rel(ours, ref["bf16"])
        out["rel_l2_ours_vs_hf_fp32"] = rel(ours, ref["fp32"])
        out["rel_l2_hf_bf16_vs_hf_fp32"] = rel(ref["bf16"], ref["fp32"])
        out["max_abs_ours_vs_hf_bf16"] = float((ours - ref["bf16"]).abs().max())
        out["logit_std_hf"] = float(ref["fp32"].std())
        out["argmax_agree_ours_vs_hf_bf16"] = float((ours.argmax(-1) == ref["bf16"].argmax(-1)).float().mean())
        out["argmax_agree_hf_bf16_vs_fp32"] = float((ref["bf16"].argmax(-1) == ref["fp32"].argmax(-1)).float().mean())
        if ours_fp32 is not None:
            out["rel_l2_ours_fp32_vs_hf_fp32"] = rel(ours_fp32, ref["fp32"])
            out["argmax_agree_ours_fp32_vs_hf_fp32"] = float((ours_fp32.argmax(-1) == ref["fp32"].argmax(-1)).float().mean())
    out["bf16_slack"], out["fp32_target"] = p["bf16_slack"], p["fp32_target"]
    out["pass_bf16"] = out["rel_l2_ours_vs_hf_fp32"] <= p["bf16_slack"] * out["rel_l2_hf_bf16_vs_hf_fp32"]
    if ours_fp32 is not None:
        out["pass_fp32"] = out["rel_l2_ours_fp32_vs_hf_fp32"] <= p["fp32_target"]
    out.update(_versions())
    return out


def child_train(p: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    model = _load(p["dir"], torch.bfloat16)
    model.config.use_cache = False
    # Same adapter as ours: r, alpha 2r, no dropout, every linear layer; PEFT keeps the adapter
    # in float32 over the bf16 base (autocast_adapter_dtype), as the engine does.
    lcfg = LoraConfig(r=p["rank"], lora_alpha=2 * p["rank"], lora_dropout=0.0, target_modules=LORA_TARGETS,
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lcfg)
    model.train()
    trainable = [t for t in model.parameters() if t.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    gen = torch.Generator(device="cpu").manual_seed(1)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (p["batch"], p["seq"]), generator=gen).to(_device())
    times, losses = [], []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    for _ in range(p["warmup"] + p["steps"]):
        _sync()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    timed = times[p["warmup"]:]
    out = {
        "tokens_per_s": p["batch"] * p["seq"] * len(timed) / sum(timed),
        "step_s": {"mean": sum(timed) / len(timed), "min": min(timed), "max": max(timed)},
        "first_step_s": times[0], "loss_first": losses[0], "loss_last": losses[-1],
        "trainable_params": sum(t.numel() for t in trainable),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
    }
    if torch.cuda.is_available():
        out["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
    out.update(_versions())
    return out


def child_decode(p: dict) -> dict:
    import torch
    model = _load(p["dir"], torch.bfloat16).eval()
    gen = torch.Generator(device="cpu").manual_seed(2)
    ids = torch.randint(0, model.config.vocab_size, (1, p["prompt_len"]), generator=gen).to(_device())
    n = p["new_tokens"]
    kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0,
              attention_mask=torch.ones_like(ids))
    times = []
    with torch.no_grad():
        for r in range(1 + p["runs"]):
            _sync()
            t0 = time.perf_counter()
            out = model.generate(ids, **kw)
            _sync()
            if r > 0:
                times.append(time.perf_counter() - t0)
            if out.shape[1] - ids.shape[1] != n:
                raise RuntimeError(f"generated {out.shape[1] - ids.shape[1]} tokens, want {n}")
    times.sort()
    med = times[len(times) // 2]
    res = {"tokens_per_s": n / med, "total_s": {"median": med, "min": times[0], "max": times[-1]}, "new_tokens": n}
    res.update(_versions())
    return res


def child_bandwidth(p: dict) -> dict:
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    nbytes = 1 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    reps = 20
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        dst.copy_(src)
    end.record()
    torch.cuda.synchronize()
    secs = start.elapsed_time(end) / 1e3
    props = torch.cuda.get_device_properties(0)
    # A copy reads and writes every byte.
    return {"copy_gb_s": 2 * nbytes * reps / secs / 1e9, "device": props.name,
            "memory_gb": props.total_memory / 1e9}


if __name__ == "__main__":
    sys.exit(main())
