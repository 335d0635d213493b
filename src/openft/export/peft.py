"""`peft`: the LoRA adapter as PEFT saves one, with a README that says how to load it on its base.

The weights file is copied byte for byte. `adapter_config.json` is rewritten to name the base by its
catalog name instead of a path on the server, and the tokenizer (with the chat template the model was
trained with) goes beside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from openft.export.source import ExportSource
from openft.inference.model_dirs import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS

README = "README.md"


def export_peft(source: ExportSource, out_dir: Path, base_description: str) -> list[Path]:
    assert source.model.adapter_path is not None, "check_format_fits refuses full fine-tunes"
    adapter_dir = Path(source.model.adapter_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = next(adapter_dir / n for n in ADAPTER_WEIGHTS if (adapter_dir / n).is_file())
    shutil.copyfile(weights, out_dir / weights.name)
    config = json.loads((adapter_dir / ADAPTER_CONFIG_FILE).read_text())
    config["base_model_name_or_path"] = source.base_name
    (out_dir / ADAPTER_CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    end_of_turn = _save_tokenizer(source, out_dir)
    (out_dir / README).write_text(readme(source, config, base_description, end_of_turn))
    return sorted(p for p in out_dir.iterdir() if p.is_file())


def _save_tokenizer(source: ExportSource, out_dir: Path) -> str:
    """Save the tokenizer; returns its end-of-turn token (where generation should stop)."""
    from transformers import AutoTokenizer

    from openft.data.render import end_of_turn_id

    tokenizer = AutoTokenizer.from_pretrained(source.model.tokenizer_path)
    tokenizer.save_pretrained(str(out_dir))
    return str(tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer)))


def readme(source: ExportSource, config: dict[str, object], base_description: str, end_of_turn: str) -> str:
    return f"""# {source.name} (LoRA adapter)

A LoRA adapter (rank {config.get("r")}, alpha {config.get("lora_alpha")}, on
{", ".join(sorted(str(m) for m in _listed(config.get("target_modules"))))}) exported by openft from the
fine-tuned model `{source.name}`.

Base model: `{source.base_name}`: {base_description}.
`adapter_config.json` names it in `base_model_name_or_path`. The adapter gives the served model's
answers only on these exact base weights: `openft models list` on the server shows where they are,
and `openft export {source.name} --format merged` writes the base with this adapter merged in.

## Load it

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("PATH/TO/{source.base_name}")
model = PeftModel.from_pretrained(base, "PATH/TO/THIS/DIRECTORY")
tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/DIRECTORY")

messages = [{{"role": "user", "content": "Hello"}}]
inputs = tokenizer.apply_chat_template(
    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
)
output = model.generate(**inputs, max_new_tokens=64, do_sample=False)
print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```

The tokenizer here carries the chat template the model was trained with; generation should stop at
its end-of-turn token `{end_of_turn}`
(`eos_token_id=tokenizer.convert_tokens_to_ids("{end_of_turn}")`).
"""


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple | set) else [value]
