"""A real inference server for the proxy's tests: llama.cpp's `llama-server` serving a tiny
llama model with random weights and a real tokenizer.

The weights are noise, so the text is too, but every token is really tokenized,
generated and counted by the server: the `usage` it reports is the real thing the proxy
must carry. The model is written once per cache dir with the `gguf` package; the vocab
(tokens, scores, types, special ids) is copied from one of llama.cpp's vocab-only files,
which scripts/dev/llama-fetch.sh keeps beside the binary.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from support.pipeline import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO_ROOT / "scripts" / "dev" / "llama-fetch.sh"
BUILD_TIMEOUT_S = 1800
"""A cold build is about 4 minutes on 2 idle cores; far longer when they are shared."""
MODEL_NAME = "tiny-random-llama"
VOCAB = "ggml-vocab-llama-spm.gguf"

# A llama small enough to write in a second and run on one core: about 4 MB of f32.
N_EMBD = 32
N_HEAD = 4
N_LAYER = 2
N_FF = 64
N_CTX = 8192
"""Training context, and the server's: 2,048 tokens for each of its 4 slots."""
MODEL_FILE = f"tiny-random-llama-e{N_EMBD}-l{N_LAYER}-c{N_CTX}.gguf"
"""Named by its shape, so a change of shape writes a new file instead of reusing the old."""


class LlamaUnavailable(Exception):
    """The server could not be built or started."""


def fetch_llama_server() -> Path:
    """The llama-server binary, built into the cache on first use (slow once)."""
    try:
        result = subprocess.run(
            [str(FETCH_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LlamaUnavailable(f"{FETCH_SCRIPT} ran over {BUILD_TIMEOUT_S}s") from None
    if result.returncode != 0:
        raise LlamaUnavailable(f"{FETCH_SCRIPT} failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def cache_dir() -> Path:
    return Path(os.environ.get("GPUCOST_CACHE", Path.home() / ".cache" / "gpucost"))


def cached_model(binary: Path) -> Path:
    """The tiny model in the cache, written on first use with the vocab beside `binary`."""
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    return write_tiny_model(models / MODEL_FILE, binary.parent.parent / "vocab" / VOCAB)


def write_tiny_model(path: Path, vocab_file: Path, seed: int = 7) -> Path:
    """A random-weight llama GGUF at `path` (written once: an existing file is kept)."""
    import gguf

    if path.exists():
        return path
    vocab = gguf.GGUFReader(vocab_file)
    n_vocab = len(vocab.fields["tokenizer.ggml.tokens"].contents())
    tmp = path.with_suffix(".tmp")
    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_name(MODEL_NAME)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for name, field in vocab.fields.items():
        if name.startswith("tokenizer."):
            _copy_field(writer, name, field)
    # A chat template, so /v1/chat/completions turns messages into a prompt.
    writer.add_chat_template(
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    writer.add_tensor("token_embd.weight", weights(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", weights(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        for part, shape in (
            ("attn_norm", (N_EMBD,)),
            ("ffn_norm", (N_EMBD,)),
            ("attn_q", (N_EMBD, N_EMBD)),
            ("attn_k", (N_EMBD, N_EMBD)),
            ("attn_v", (N_EMBD, N_EMBD)),
            ("attn_output", (N_EMBD, N_EMBD)),
            ("ffn_gate", (N_FF, N_EMBD)),
            ("ffn_up", (N_FF, N_EMBD)),
            ("ffn_down", (N_EMBD, N_FF)),
        ):
            data = np.ones(shape, np.float32) if part.endswith("norm") else weights(*shape)
            writer.add_tensor(f"blk.{i}.{part}.weight", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path


def _copy_field(writer: Any, name: str, field: Any) -> None:
    import gguf

    kind = field.types[0]
    value = field.contents()
    if kind == gguf.GGUFValueType.ARRAY:
        writer.add_array(name, value)
    elif kind == gguf.GGUFValueType.STRING:
        writer.add_string(name, value)
    elif kind == gguf.GGUFValueType.BOOL:
        writer.add_bool(name, value)
    elif kind == gguf.GGUFValueType.FLOAT32:
        writer.add_float32(name, value)
    elif kind == gguf.GGUFValueType.INT32:
        writer.add_int32(name, value)
    else:
        writer.add_uint32(name, value)


@dataclass
class LlamaServer:
    binary: Path
    model: Path
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        self.port = self.port or free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--model", str(self.model),
                "--alias", MODEL_NAME,
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--ctx-size", str(N_CTX),
                "--parallel", "4",
                "--threads", "1",
                "--no-webui",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LlamaUnavailable(
                    f"llama-server exited {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LlamaUnavailable(f"llama-server not healthy after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
