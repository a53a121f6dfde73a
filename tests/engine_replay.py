"""A check shared by the engine tests: calls bound once per token layout read each call's inputs."""

import numpy as np


def feeds(rng, batch: int, length: int, left_padding: int = 0) -> dict:
    """Random token ids, ``left_padding`` masked positions at the front of every row (0: the packed layout)."""
    mask = np.ones((batch, length), np.int64)
    mask[:, :left_padding] = 0
    return {"input_ids": rng.integers(1000, 30000, (batch, length)).astype(np.int64), "attention_mask": mask,
            "token_type_ids": np.zeros((batch, length), np.int64)}


def check_bound_calls_follow_the_inputs(make_engine, batch: int = 4, length: int = 40) -> None:
    """One engine called with A, B, A (same shapes, other token ids: one token layout, its calls bound on the first)
    gives a fresh engine's logits for each, bit for bit — for packed rows and for left-padded rows whose additive
    masks differ (A's and B's padding lengths differ, the shapes do not)."""
    rng = np.random.default_rng(0)
    for pads in ((0, 0), (3, 7)):
        a, b = feeds(rng, batch, length, pads[0]), feeds(rng, batch, length, pads[1])
        engine = make_engine()
        got = [engine(f) for f in (a, b, a)]
        encoder = engine.executors[0]
        assert any(key[0] == "call" for key in encoder._plan)  # the layout's stage calls were bound
        bound = {key: value for key, value in encoder._plan.items() if key[0] == "call"}
        engine(a)
        assert all(encoder._plan.get(key) is value for key, value in bound.items())  # and kept, not made anew
        np.testing.assert_array_equal(got[0], got[2])
        np.testing.assert_array_equal(got[1], make_engine()(b))
        np.testing.assert_array_equal(got[0], make_engine()(a))
        assert not np.array_equal(got[0], got[1])
