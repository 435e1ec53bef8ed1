"""The RNN text task: tokens, vocabulary, padding and masking; the hand-written cells against
torch.nn.LSTM and torch.nn.GRU; the schedule rebuilt in any order; the black-box training equal
to the training handed to hypergradient methods."""

import math

import pytest
import torch

from bench.build import build
from bench.errors import BenchError
from methods.hypergradient import Hyperparameters, train
from tasks.text_rnn import PAD, UNKNOWN, build_vocabulary, encode, layout, logits, tokenize, unflatten
from tests.helpers import bench_config

SMALL = [  # a model that trains an epoch of rotten_tomatoes in well under a second
    "task=text_rnn",
    "method=random",
    "device=cpu",
    "task.max_vocabulary=500",
    "task.space.embedding_size.low=4",
    "task.space.embedding_size.default=4",
    "task.space.hidden_units.low=4",
    "task.space.hidden_units.default=5",
    "task.space.batch_size.default=128",
    "task.space.epochs.default=1",
]


@pytest.fixture(scope="module")
def task(bench_data):
    return build(bench_config(*SMALL)).task


def test_tokens_are_lowercased_words_numbers_and_contractions():
    assert tokenize("Don't STOP-me now: 2 times, it's 'great'!") == [
        "don't",
        "stop",
        "me",
        "now",
        "2",
        "times",
        "it's",
        "great",
    ]


def test_the_vocabulary_keeps_frequent_tokens_by_count_then_alphabet():
    texts = ["b a a c", "c b d", "a e e"]
    assert build_vocabulary(texts, max_vocabulary=10, min_count=2) == {"a": 2, "b": 3, "c": 4, "e": 5}
    assert build_vocabulary(texts, max_vocabulary=2, min_count=1) == {"a": 2, "b": 3}


def test_encoding_pads_truncates_and_marks_unknown_tokens():
    vocabulary = {"good": 2, "film": 3}
    ids, lengths = encode(["a good film", "film", "", "good good good good good"], vocabulary, max_length=4)
    assert ids.tolist() == [
        [UNKNOWN, 2, 3, PAD],
        [3, PAD, PAD, PAD],
        [UNKNOWN, PAD, PAD, PAD],
        [2, 2, 2, 2],
    ]
    assert lengths.tolist() == [3, 1, 1, 4]


def test_the_vocabulary_comes_from_the_training_split_only(task):
    train_tokens = {t for text in task.corpus.part("train")[0] for t in tokenize(text)}
    assert set(task.vocabulary) <= train_tokens
    assert len(task.vocabulary) == 500 and min(task.vocabulary.values()) == 2


def random_parameters(cell, layers, seed=0, vocabulary=30, width=5, hidden=6, classes=3):
    config = {"cell": cell, "layers": layers, "hidden_units": hidden, "embedding_size": width}
    shapes = layout(config, vocabulary, classes)
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(sum(math.prod(s) for _, s in shapes), generator=generator, dtype=torch.float64) * 0.5
    return unflatten(w, shapes)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_cells_are_torch_nn_cells_read_at_each_texts_last_token(cell, layers):
    """An independent computation: torch.nn.LSTM / GRU on packed sequences (so padding is never
    read), given the same weights (ours store the LSTM's gates as i, f, o, g; PyTorch's as
    i, f, g, o), then the same output layer."""
    params = random_parameters(cell, layers)
    hidden = params["layer_0.w_hh"].shape[0]
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([7, 3, 1, 5])
    ids = torch.randint(2, 30, (4, 9), generator=generator)
    ids[torch.arange(9) >= lengths[:, None]] = PAD
    module = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(5, hidden, layers, batch_first=True).double()
    order = [0, 1, 3, 2] if cell == "lstm" else [0, 1, 2]  # our blocks in PyTorch's order
    with torch.no_grad():
        for layer in range(layers):

            def blocks(tensor, dim=-1):
                return torch.cat([tensor.chunk(len(order), dim=dim)[i] for i in order], dim=dim)

            getattr(module, f"weight_ih_l{layer}").copy_(blocks(params[f"layer_{layer}.w_ih"]).T)
            getattr(module, f"weight_hh_l{layer}").copy_(blocks(params[f"layer_{layer}.w_hh"]).T)
            getattr(module, f"bias_ih_l{layer}").copy_(blocks(params[f"layer_{layer}.b_ih"]))
            getattr(module, f"bias_hh_l{layer}").copy_(blocks(params[f"layer_{layer}.b_hh"]))
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            params["embedding"][ids], lengths, batch_first=True, enforce_sorted=False
        )
        state = module(packed)[1]
        last = (state[0] if cell == "lstm" else state)[-1]
        expected = last @ params["output.w"] + params["output.b"]
    torch.testing.assert_close(logits(params, cell, layers, ids, lengths), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_never_changes_a_prediction(cell):
    params = random_parameters(cell, layers=2)
    generator = torch.Generator().manual_seed(2)
    lengths = torch.tensor([4, 2, 6])
    ids = torch.randint(2, 30, (3, 6), generator=generator)
    ids[torch.arange(6) >= lengths[:, None]] = PAD
    reference = logits(params, cell, 2, ids, lengths)
    longer = torch.cat([ids, torch.full((3, 5), PAD)], dim=1)  # more padding
    garbage = torch.where(ids == PAD, torch.randint(2, 30, ids.shape, generator=generator), ids)  # other ids there
    torch.testing.assert_close(logits(params, cell, 2, longer, lengths), reference, rtol=0, atol=0)
    torch.testing.assert_close(logits(params, cell, 2, garbage, lengths), reference, rtol=0, atol=0)
    alone = logits(params, cell, 2, ids[1:2, :2], lengths[1:2])  # a text scored on its own
    torch.testing.assert_close(alone, reference[1:2], rtol=1e-12, atol=1e-12)


def test_batches_and_input_noise_are_rebuilt_in_any_order(task):
    config = {**task.space.default, "input_noise": 0.5}
    problem = task.training_problem(config, seed=3)
    forward = [problem.batch(t) for t in range(problem.steps)]
    backward = [problem.batch(t) for t in reversed(range(problem.steps))][::-1]
    for a, b in zip(forward, backward, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    assert forward[0][3].std() == pytest.approx(0.5, rel=0.1)
    assert not torch.equal(forward[0][0], forward[1][0])  # steps draw other texts
    assert not torch.equal(task.training_problem(config, seed=4).batch(0)[0], forward[0][0])


def test_the_black_box_training_is_the_training_handed_to_hypergradient_methods(task):
    """task.evaluate and a hypergradient method's forward pass (methods.hypergradient.train, from the
    method's own coordinates log learning rate, logit momentum, log L2) train the same weights."""
    config = {**task.space.default, "learning_rate": 0.7, "momentum": 0.8, "l2": 1e-3, "input_noise": 0.2}
    evaluation = task.evaluate(config, seed=5)
    problem = task.training_problem(config, seed=5)
    hyper = Hyperparameters(torch.tensor(math.log(0.7)), torch.logit(torch.tensor(0.8)), torch.tensor([math.log(1e-3)]))
    w_final, _, _ = train(problem, hyper)
    scored = problem.score(w_final)
    assert scored.metrics["validation_loss"] == pytest.approx(evaluation.metrics["validation_loss"], rel=1e-4)
    assert abs(scored.objective - evaluation.objective) <= 2 / 1276  # a prediction may flip at float32 noise
    assert evaluation.cost_steps == problem.steps == task.steps(config) == 80  # 10,200 texts / 128 per step


def test_training_lowers_the_training_loss(task):
    config = {**task.space.default, "learning_rate": 1.0, "epochs": 3}
    problem = task.training_problem(config, seed=0)
    before = problem.score(problem.w0).metrics["train_loss"]
    assert task.evaluate(config, seed=0).metrics["train_loss"] < before - 0.01


@pytest.mark.parametrize("granularity", ["universal", "per_layer", "per_unit"])
def test_biases_carry_no_penalty_and_matrices_one_group_each(task, granularity):
    config = {**task.space.default, "layers": 2}
    problem = task.training_problem(config, seed=0, l2_granularity=granularity)
    shapes = layout(config, len(task.vocabulary) + 2, 2)
    sizes = [math.prod(shape) for _, shape in shapes]
    pieces = dict(zip([name for name, _ in shapes], torch.split(problem.l2_groups, sizes), strict=True))
    assert all((pieces[name] == -1).all() for name, shape in shapes if len(shape) == 1)
    matrices = [name for name, shape in shapes if len(shape) == 2]
    expected = {"universal": 1, "per_layer": len(matrices), "per_unit": sum(dict(shapes)[n][0] for n in matrices)}
    assert len(problem.l2_names) == expected[granularity] == int(problem.l2_groups.max()) + 1


def test_a_bad_cell_or_length_is_one_line():
    with pytest.raises(BenchError, match=r"task.space.cell: \['rnn'\] are not cells; allowed: gru, lstm"):
        build(bench_config(*SMALL, "task.space.cell.choices=[lstm,rnn]"))
    with pytest.raises(BenchError, match=r"task.max_length=0: must be a positive whole number"):
        build(bench_config(*SMALL, "task.max_length=0"))
