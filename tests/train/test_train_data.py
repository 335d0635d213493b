"""From JSONL to packed batches: loss masks, weight 0, tools, truncation, the step plan, packing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from openft.train.adapters import load_base_model, load_tokenizer
from openft.train.examples import DataError, TokenizedExample, load_examples, tokenize_example
from openft.train.loss import TokenLoss
from openft.train.packing import pack, packed_attention_enabled
from openft.train.plan import Plan, split_across_ranks

QUESTION = [
    {"role": "user", "content": "What is the capital of Peru?"},
    {"role": "assistant", "content": "Lima"},
]
WITH_IGNORED_TURN = [
    *QUESTION,
    {"role": "user", "content": "And of Chile?"},
    {"role": "assistant", "content": "Quito, no wait", "weight": 0},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):
    return load_tokenizer(tiny_model)


def _trained_text(tokenizer, example: TokenizedExample) -> str:
    ids = [t for t, m in zip(example.input_ids, example.loss_mask, strict=True) if m]
    return tokenizer.decode(ids)


def test_only_weighted_assistant_tokens_carry_loss(tokenizer) -> None:
    example = tokenize_example(tokenizer, {"messages": WITH_IGNORED_TURN}, 2048)
    assert _trained_text(tokenizer, example) == "Lima<|im_end|>"
    assert example.n_loss_tokens == len("Lima") + 1


def test_tool_calls_are_rendered_and_trained(tokenizer) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
    ]
    example = tokenize_example(tokenizer, {"messages": messages, "tools": tools}, 2048)
    assert (
        _trained_text(tokenizer, example)
        == '<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call><|im_end|>'
    )
    assert '"name": "weather"' in tokenizer.decode(
        example.input_ids[: example.loss_mask.index(1)]
    )  # tools in prompt


def test_long_examples_lose_tokens_from_the_end(tokenizer) -> None:
    full = tokenize_example(tokenizer, {"messages": QUESTION}, 2048)
    cut = tokenize_example(tokenizer, {"messages": QUESTION}, full.n_tokens - 3)
    assert cut.n_tokens == full.n_tokens - 3
    assert cut.input_ids == full.input_ids[: cut.n_tokens]
    assert cut.loss_mask == full.loss_mask[: cut.n_tokens]
    assert _trained_text(tokenizer, cut) == "Lim"  # the answer lost its last letter and its end token


def test_bad_lines_name_file_and_line(tmp_path: Path, tokenizer) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(
        json.dumps({"messages": QUESTION}) + "\n" + json.dumps({"prompt": "x", "completion": "y"}) + "\n"
    )
    with pytest.raises(DataError, match=r"train\.jsonl line 2"):
        load_examples(path, tokenizer, 2048)


def test_every_example_once_per_epoch_in_a_seeded_order() -> None:
    plan = Plan(n_examples=10, batch_size=4, n_epochs=3, seed=5)
    assert (plan.steps_per_epoch, plan.total_steps) == (3, 9)
    epochs = [[i for step in range(1 + 3 * e, 4 + 3 * e) for i in plan.examples_of(step)] for e in range(3)]
    assert all(sorted(order) == list(range(10)) for order in epochs)
    assert epochs[0] != epochs[1]
    assert [len(plan.examples_of(s)) for s in (1, 2, 3)] == [4, 4, 2]
    assert Plan(10, 4, 3, seed=5).examples_of(4) == plan.examples_of(4)
    assert [plan.is_epoch_end(s) for s in range(1, 7)] == [False, False, True, False, False, True]


def test_ranks_share_a_step_by_tokens() -> None:
    lengths = [100, 10, 10, 10, 60, 50]
    shares = split_across_ranks([0, 1, 2, 3, 4, 5], lengths, 2)
    assert sorted(shares[0] + shares[1]) == [0, 1, 2, 3, 4, 5]
    loads = [sum(lengths[i] for i in share) for share in shares]
    assert abs(loads[0] - loads[1]) <= 20
    assert split_across_ranks([3], lengths, 2) == [[3], []]


def test_pack_targets_are_the_next_trained_tokens() -> None:
    a = TokenizedExample([1, 2, 3, 4], [0, 0, 1, 1])
    b = TokenizedExample([5, 6, 7], [0, 1, 0])
    batch = pack([a, b])
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 7]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    assert batch.target_positions.tolist() == [1, 2, 4]
    assert batch.targets.tolist() == [3, 4, 6]


def test_packed_examples_do_not_see_each_other(tiny_model: Path, tokenizer) -> None:
    model = load_base_model(tiny_model)
    examples = [
        tokenize_example(tokenizer, {"messages": QUESTION}, 2048),
        tokenize_example(tokenizer, {"messages": WITH_IGNORED_TURN}, 2048),
        tokenize_example(tokenizer, {"messages": QUESTION + QUESTION}, 2048),
    ]
    loss = TokenLoss(model, packed=True)
    with torch.no_grad(), packed_attention_enabled(model):
        together = loss(pack(examples))[0].item()
    with torch.no_grad():
        alone = sum(TokenLoss(model, packed=False)(pack([e]))[0].item() for e in examples)
    assert together == pytest.approx(alone, rel=1e-5)


def test_a_weight_0_turn_adds_no_loss(tiny_model: Path, tokenizer) -> None:
    model = load_base_model(tiny_model)
    loss = TokenLoss(model, packed=False)
    with torch.no_grad():
        plain = loss(pack([tokenize_example(tokenizer, {"messages": QUESTION}, 2048)]))
        ignored = loss(pack([tokenize_example(tokenizer, {"messages": WITH_IGNORED_TURN}, 2048)]))
    assert ignored[0].item() == pytest.approx(plain[0].item(), rel=1e-5)
    assert ignored[1].item() == plain[1].item()


def test_fused_lora_forward_matches_peft(tiny_model: Path) -> None:
    from openft.train.adapters import build_trainable_model
    from openft.train.fused_lora import fused_lora_forward
    from openft.train.spec import SupervisedHyperparameters as Hyperparameters
    from openft.train.spec import resolve_supervised as resolve_config

    config = resolve_config(
        Hyperparameters(lora_rank=4),
        n_train_examples=1,
        base_model_name="openft-tiny",
        base_model_path=str(tiny_model),
        defaults=None,
        training_file="unused",
        validation_file=None,
        output_dir="unused",
        seed=0,
        context_length=2048,
    )
    model = build_trainable_model(config, torch.device("cpu"))
    with torch.no_grad():  # B starts at zero; give the adapter something to add
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    input_ids = torch.randint(0, 256, (1, 40))

    def logits_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        logits = model(input_ids=input_ids).logits
        logits.square().mean().backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    expected, expected_grads = logits_and_grads()
    with torch.no_grad(), model.disable_adapter():
        base_logits = model(input_ids=input_ids).logits
    with fused_lora_forward(model) as n_replaced:
        got, got_grads = logits_and_grads()
        # Disabling the adapter (a reference model's forward pass) is obeyed inside the fused forward.
        with torch.no_grad(), model.disable_adapter():
            torch.testing.assert_close(model(input_ids=input_ids).logits, base_logits)
    assert not torch.allclose(base_logits, expected)
    assert n_replaced == 2 * 7  # every linear layer of both decoder layers
    torch.testing.assert_close(got, expected)
    for g, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e)
    assert "forward" not in vars(next(m for m in model.modules() if hasattr(m, "lora_A")))  # restored
