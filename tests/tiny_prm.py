"""A tiny randomly initialised process reward model on disk, built locally (no hub access).

It has the layout of Qwen2.5-Math-PRM (``Qwen2ForProcessRewardModel``: a Qwen2 body under
``model.*`` and a two-layer, two-class head ``score.0`` / ``score.2``) and the built-in
small model's tokenizer with the step tag ``<extra_0>`` added as a special token. Its
scores are meaningless; it exists so vLLM's pooling runner can be exercised for real.
"""

from __future__ import annotations

import json
from pathlib import Path

STEP_TAG = "<extra_0>"


def build_tiny_prm(folder: Path, *, seed: int = 0) -> Path:
    """Write the tiny PRM (config, tokenizer, float32 safetensors) into ``folder``; returns it."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    from actors.models import resolve_model_path

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m-instruct", None))
    if STEP_TAG not in tokenizer.get_vocab():
        tokenizer.add_tokens([STEP_TAG], special_tokens=True)
    tokenizer.save_pretrained(folder)

    # head_dim 32: vLLM's CPU attention supports no smaller head size
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        num_labels=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.architectures = ["Qwen2ForProcessRewardModel"]
    torch.manual_seed(seed)
    body = Qwen2Model(config).float()
    # nn.Linear's default init, not the 0.02-std one, so scores differ visibly between tokens
    hidden = config.hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    tensors = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    tensors |= {f"score.{k}": v.contiguous() for k, v in head.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config_dict = config.to_dict() | {"dtype": "float32"}
    (folder / "config.json").write_text(json.dumps(config_dict, indent=2))
    return folder
