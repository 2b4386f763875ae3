"""Token batches: budget respected, every example once, deterministic shuffling, padding;
word dropout."""

import random

import torch

from softalign.data.batching import collate, drop_words, token_batches
from softalign.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def lengths(n, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 40) for _ in range(n)], [rng.randint(1, 40) for _ in range(n)]


def test_every_example_exactly_once_and_budget_respected():
    src, tgt = lengths(1000)
    batches = token_batches(src, tgt, max_tokens=300, seed=1, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    for batch in batches:
        width = max(max(src[i], tgt[i] + 1) for i in batch)
        assert len(batch) * width <= 300 or len(batch) == 1


def test_shuffling_is_deterministic_per_seed_and_epoch():
    src, tgt = lengths(500)
    a = token_batches(src, tgt, 200, seed=3, epoch=2)
    assert a == token_batches(src, tgt, 200, seed=3, epoch=2)
    assert a != token_batches(src, tgt, 200, seed=3, epoch=3)


def test_length_bucketing_keeps_padding_low():
    src, tgt = lengths(2000)
    batches = token_batches(src, tgt, 1000, seed=0)
    real = sum(src)
    padded = sum(len(b) * max(src[i] for i in b) for b in batches)
    assert padded / real < 1.1


def test_collate_wraps_targets_with_bos_and_eos():
    batch = collate([1, 0], [[5, 6, 7], [8]], [[9], [10, 11]])
    assert batch.src.tolist() == [[8, PAD_ID, PAD_ID], [5, 6, 7]]
    assert batch.src_lengths.tolist() == [1, 3]
    assert batch.tgt_in.tolist() == [[BOS_ID, 10, 11], [BOS_ID, 9, PAD_ID]]
    assert batch.tgt_out.tolist() == [[10, 11, EOS_ID], [9, EOS_ID, PAD_ID]]
    assert batch.pad_mask.tolist() == [[False, True, True], [False, False, False]]
    assert batch.num_target_tokens == 5
    assert batch.src.dtype == torch.int64


def test_word_dropout_replaces_words_by_unk_at_its_rate_and_nothing_else():
    rng = random.Random(0)
    src = [[rng.randint(4, 99) for _ in range(rng.randint(1, 30))] for _ in range(400)]
    tgt = [[rng.randint(4, 99) for _ in range(rng.randint(1, 30))] for _ in range(400)]
    batch = collate(list(range(400)), src, tgt)
    dropped = drop_words(batch, 0.25, torch.Generator().manual_seed(1))
    for before, after in [(batch.src, dropped.src), (batch.tgt_in, dropped.tgt_in)]:
        changed = before != after
        assert (after[changed] == UNK_ID).all()
        assert not changed[(before == PAD_ID) | (before == BOS_ID)].any()  # specials stay
        words = (before != PAD_ID) & (before != BOS_ID)
        assert abs(changed.sum().item() / words.sum().item() - 0.25) < 0.02
    assert torch.equal(dropped.tgt_out, batch.tgt_out)  # what is predicted is never dropped
    assert torch.equal(dropped.src_lengths, batch.src_lengths)
    again = drop_words(batch, 0.25, torch.Generator().manual_seed(1))
    assert torch.equal(again.src, dropped.src)  # the generator decides
    assert drop_words(batch, 0.0) is batch
