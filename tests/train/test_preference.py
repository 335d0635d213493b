"""Preference pairs: what is trained, each output's log-probability in a packed row, and the DPO loss."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from openft.train.adapters import load_base_model, load_tokenizer
from openft.train.examples import DataError
from openft.train.packing import pack, pack_pairs, packed_attention_enabled
from openft.train.preference import (
    PreferenceTotals,
    dpo_loss,
    flatten,
    load_pairs,
    sequence_log_probs,
    tokenize_pair,
)

SYSTEM = {"role": "system", "content": "Answer briefly."}


def pair(question: str, good: str, bad: str, **extra: Any) -> dict[str, Any]:
    return {
        "input": {"messages": [SYSTEM, {"role": "user", "content": question}], **extra},
        "preferred_output": [{"role": "assistant", "content": good}],
        "non_preferred_output": [{"role": "assistant", "content": bad}],
    }


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    return load_tokenizer(tiny_model)


def test_only_the_final_output_is_trained_and_both_share_the_prompt(tokenizer: Any) -> None:
    example = pair("Capital of France?", "Paris.", "Lyon, obviously.")
    # An assistant turn inside the prompt is context, not trained.
    example["input"]["messages"] += [
        {"role": "assistant", "content": "Which country?"},
        {"role": "user", "content": "France."},
    ]
    tokenized = tokenize_pair(tokenizer, example, max_seq_length=512)
    good, bad = tokenized.conversations()
    first_trained = good.loss_mask.index(1)
    assert good.input_ids[:first_trained] == bad.input_ids[:first_trained]  # the same prompt tokens
    assert set(good.loss_mask[:first_trained]) == set(bad.loss_mask[: bad.loss_mask.index(1)]) == {0}
    # The byte tokenizer: one token per byte, so the trained tokens spell the output and end of turn.
    trained = bytes(t for t, m in zip(good.input_ids, good.loss_mask, strict=True) if m and t < 256)
    assert trained.startswith(b"Paris.")
    assert sum(bad.loss_mask) > sum(good.loss_mask)  # the longer output trains more tokens
    assert b"Which country?" not in bytes(
        t for t, m in zip(good.input_ids, good.loss_mask, strict=True) if m and t < 256
    )


def test_packed_log_probs_equal_one_conversation_at_a_time(tiny_model: Path, tokenizer: Any) -> None:
    torch.manual_seed(0)
    model = load_base_model(tiny_model)
    model.eval()
    pairs = [
        tokenize_pair(tokenizer, pair("2+2?", "4", "5"), 512),
        tokenize_pair(tokenizer, pair("Sky colour?", "Blue on a clear day.", "Green"), 512),
    ]
    conversations = flatten(pairs)
    with torch.no_grad(), packed_attention_enabled(model):
        packed = sequence_log_probs(model, pack(conversations, pad_to_multiple=128), 4, packed=True)
    with torch.no_grad():
        one_by_one = []
        for conversation in conversations:
            ids = torch.tensor([conversation.input_ids])
            log_probs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            one_by_one.append(
                sum(
                    log_probs[p, conversation.input_ids[p + 1]].item()
                    for p in range(conversation.n_tokens - 1)
                    if conversation.loss_mask[p + 1]
                )
            )
    assert packed.shape == (4,)
    assert packed.tolist() == pytest.approx(one_by_one, rel=1e-4)
    assert all(value < 0 for value in one_by_one)


@pytest.mark.parametrize("pad_to_multiple", [1, 128])
def test_pairs_sharing_their_prompt_give_the_same_log_probs(
    tiny_model: Path, tokenizer: Any, pad_to_multiple: int
) -> None:
    """pack_pairs runs each prompt once for both outputs; every output's log-probability is still what
    one conversation per row gives (outputs that begin alike, and an output inside a longer prompt)."""
    torch.manual_seed(0)
    model = load_base_model(tiny_model)
    model.eval()
    long_prompt = pair("Sky colour?", "Blue on a clear day.", "Blue-ish green")
    long_prompt["input"]["messages"] += [
        {"role": "assistant", "content": "Where?"},
        {"role": "user", "content": "Here."},
    ]
    pairs = [
        tokenize_pair(tokenizer, pair("2+2?", "4", "5"), 512),
        tokenize_pair(tokenizer, long_prompt, 512),
        tokenize_pair(tokenizer, pair("Hi", "Hello there.", "Hello."), 512),
    ]
    row = pack_pairs([p.conversations() for p in pairs], pad_to_multiple=pad_to_multiple)
    whole = pack(flatten(pairs))
    assert row.n_tokens < whole.n_tokens - 2 * 20  # each prompt's tokens once
    with torch.no_grad(), packed_attention_enabled(model):
        shared = sequence_log_probs(model, row, 6, packed=True)
        separate = sequence_log_probs(model, whole, 6, packed=True)
    assert shared.tolist() == pytest.approx(separate.tolist(), rel=1e-4)


def test_dpo_loss_and_rewards_match_a_hand_computation() -> None:
    # Two pairs, packing order: preferred, non-preferred, preferred, non-preferred.
    policy = torch.tensor([-1.0, -3.0, -5.0, -2.0])
    reference = torch.tensor([-2.0, -2.0, -4.0, -4.0])
    beta = 0.1
    preferred_tokens = torch.tensor([2.0, 5.0])
    loss = dpo_loss(policy, reference, beta, preferred_tokens)
    # Pair 1: rewards 0.1 and -0.1, margin 0.2; pair 2: rewards -0.1 and 0.2, margin -0.3.
    expected = math.log1p(math.exp(-0.2)) + math.log1p(math.exp(0.3))
    assert loss.loss_sum.item() == pytest.approx(expected, rel=1e-6)
    assert loss.preferred_rewards.tolist() == pytest.approx([0.1, -0.1])
    assert loss.non_preferred_rewards.tolist() == pytest.approx([-0.1, 0.2])
    # The supervised term: each preferred output's negative log-likelihood per token, 1/2 and 5/5.
    assert loss.sft_sum.item() == pytest.approx(0.5 + 1.0)
    assert loss.objective(0.0).item() == pytest.approx(expected, rel=1e-6)
    assert loss.objective(2.0).item() == pytest.approx(expected + 2 * 1.5, rel=1e-6)
    totals = PreferenceTotals()
    totals.add(loss)
    assert totals.n_pairs == 2 and totals.reward_accuracy == 0.5
    assert totals.reward_margin == pytest.approx((0.2 - 0.3) / 2)
    assert totals.mean_loss == pytest.approx(expected / 2)
    assert totals.sft_loss == pytest.approx(1.5 / 2)


def test_dpo_loss_gradient_raises_the_preferred_output() -> None:
    policy = torch.tensor([-2.0, -2.0], requires_grad=True)
    loss = dpo_loss(policy, torch.tensor([-2.0, -2.0]), beta=0.5, preferred_tokens=torch.tensor([4.0]))
    loss.loss_sum.backward()
    assert policy.grad is not None
    assert policy.grad[0] < 0 < policy.grad[1]  # descending raises the preferred, lowers the other


def test_the_supervised_term_raises_the_preferred_output_and_leaves_the_other() -> None:
    policy = torch.tensor([-2.0, -2.0], requires_grad=True)
    loss = dpo_loss(policy, torch.tensor([-2.0, -2.0]), beta=0.5, preferred_tokens=torch.tensor([4.0]))
    pure = torch.autograd.grad(loss.objective(0.0), policy, retain_graph=True)[0]
    anchored = torch.autograd.grad(loss.objective(1.0), policy)[0]
    assert anchored[0].item() == pytest.approx(pure[0].item() - 1 / 4)  # d(-logp/4)/dlogp
    assert anchored[1].item() == pytest.approx(pure[1].item())


def test_a_chat_file_is_refused_with_the_line(tmp_path: Path, tokenizer: Any) -> None:
    path = tmp_path / "chat.jsonl"
    good = json.dumps(pair("Q?", "A.", "B."))
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}]
    chat = json.dumps({"messages": messages})
    path.write_text(f"{good}\n{chat}\n")
    with pytest.raises(DataError, match=r"chat.jsonl line 2: preference fine-tuning needs preference"):
        load_pairs(path, tokenizer, 512)
    path.write_text(f"{good}\n")
    assert len(load_pairs(path, tokenizer, 512)) == 1
