"""The JAX runner of the comparison grid: records with the torch runner's keys, the Euler
bridge, costs, resume, the first steps against torch from the same weights and batches,
and the float64 forward parity of every depth scheme's model torch <-> JAX."""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

from sciml_seq.compare import (  # noqa: E402
    Budget,
    Cell,
    GridConfig,
    Scheme,
    Task,
    TaskSizes,
    jax_runner,
    read_records,
    run_grid,
    torch_runner,
)
from sciml_seq.compare.measure import Batches  # noqa: E402
from sciml_seq.convert import jax_to_torch, torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_module_compiles")


@pytest.fixture(scope="module", autouse=True)
def quick_module_compiles():
    """Most XLA optimisations off for this module's compiles (tests/conftest.py's
    ``quick_jax_compiles``, for the module-scoped grid too): compiles dominate here."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


SIZES = TaskSizes(width=4, hidden=8, heads=1, batch_size=16, learning_rate=1e-2, steps=3, depth=2)
STEPS = 3


def vector_task() -> Task:
    """y = tanh(x A) on 3 features (48 training rows, 32 test rows)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 2)).astype(np.float32)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = np.tanh(x @ a)
    return Task.from_arrays("tiny", x[:48], y[:48], x[48:], y[48:], sizes=SIZES)


def sequence_task() -> Task:
    """Which half of a 6-step, 2-channel sequence holds the larger sum: 2 classes."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 6, 2)).astype(np.float32)
    y = (x[:, :3].sum((1, 2)) > x[:, 3:].sum((1, 2))).astype(np.int64)
    return Task.from_arrays(
        "halves", x[:40], y[:40], x[40:], y[40:], target="classification", sizes=SIZES
    )


def by_name(records, seed=0):
    return {r["name"]: r for r in records if r["seed"] == seed}


@pytest.fixture(scope="module")
def jax_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax_grid")
    config = GridConfig(
        tasks=(vector_task(),),
        schemes=("tied-2", "euler-2"),
        seeds=1,
        budget_steps=STEPS,
        framework="jax",
    )
    return config, out, run_grid(config, out)


def test_every_cell_has_a_record_with_the_keys_of_a_torch_record(jax_grid):
    config, out, records = jax_grid
    assert len(records) == len(config.cells()) == 2
    assert records == read_records(out / "records.jsonl")
    task = vector_task()
    cell = Cell("tiny", Scheme.parse("tied-2"), "-", "none", 0)
    torch_numbers = torch_runner.run_cell(task, cell, SIZES, Budget(steps=1))
    jax_numbers = {k: v for k, v in records[0].items() if k in torch_numbers}
    assert set(jax_numbers) == set(torch_numbers)
    for record in records:
        assert record["framework"] == "jax" and record["versions"]["jax"]
        assert record["steps"] == STEPS and len(record["losses"]) == STEPS
        assert len(record["test_nfe_forward"]) == 32
        assert record["parameters"] == torch_numbers["parameters"]  # the same model
        assert record["peak_memory_bytes"] is None  # CPU
        assert record["activation_bytes"] > 0  # XLA's planned temporaries
        assert record["seconds_per_step"] > 0 and record["seconds_per_prediction"] > 0
        assert math.isfinite(record["test_metric"]) and math.isfinite(record["val_metric"])


def test_euler_equals_the_tied_stack_step_by_step(jax_grid):
    records = by_name(jax_grid[2])
    tied, euler = records["tied-2"], records["euler-2"]
    for (s1, l1), (s2, l2) in zip(tied["losses"], euler["losses"], strict=True):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-5)
    assert tied["test_metric"] == pytest.approx(euler["test_metric"], rel=1e-5)


def fixed_costs(records, costs):
    for name, nfe in costs.items():
        r = records[name]
        assert r["train_nfe_forward"] == r["train_nfe_backward"] == nfe
        assert r["test_nfe_forward"] == [nfe] * len(r["test_nfe_forward"])
        assert r["test_nfe_mean"] == r["test_nfe_batch"] == nfe


def test_costs_are_the_schemes(jax_grid):
    fixed_costs(by_name(jax_grid[2]), {"tied-2": 2, "euler-2": 2})


def arrays(module, name):
    return jax.tree_util.tree_leaves(eqx.filter(getattr(module, name), eqx.is_array))


@pytest.mark.slow  # fast suite: the vector-head parity and the first-steps test cover it
def test_every_cell_of_a_seed_starts_from_the_same_weights():
    task = vector_task()

    def build(name, seed=0):
        cell = Cell("tiny", Scheme.parse(name), "-", "none", seed)
        return jax_runner.build_model(task, cell, SIZES)

    tied, act, untied, other = (
        build("tied-2"),
        build("act-2"),
        build("untied-2"),
        build("tied-2", 1),
    )
    for name in ("encoder", "decoder"):
        for a, b, c in zip(
            arrays(tied, name), arrays(act, name), arrays(untied, name), strict=True
        ):
            assert np.array_equal(a, b) and np.array_equal(a, c)
    field = arrays(tied.block, "field")
    assert all(np.array_equal(a, b) for a, b in zip(field, arrays(act.block, "field"), strict=True))
    for copy in untied.block.fields:  # copies of the field, each its own arrays
        copied = jax.tree_util.tree_leaves(copy)
        assert all(np.array_equal(a, b) and a is not b for a, b in zip(field, copied, strict=True))
    assert not np.array_equal(arrays(tied, "encoder")[0], arrays(other, "encoder")[0])


def test_a_rerun_trains_nothing(jax_grid, monkeypatch):
    config, out, records = jax_grid

    def fail(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(jax_runner, "run_cell", fail)
    assert run_grid(config, out) == records


def torch_losses(task: Task, jax_model, cell: Cell, steps: int, loss) -> list[float]:
    """Train the torch twin of ``jax_model`` (its weights copied) on the runner's batches."""
    model = jax_to_torch(jax_model, torch_runner.build_model(task, cell, SIZES))
    optimizer = torch.optim.Adam(model.parameters(), lr=SIZES.learning_rate)
    batches = Batches(task.train.x.shape[0], SIZES.batch_size, cell.seed)
    losses = []
    for _ in range(steps):
        idx = batches.next()
        value = loss(model(torch.as_tensor(task.train.x[idx])), torch.as_tensor(task.train.y[idx]))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    return losses


def test_the_first_steps_are_torchs_from_the_same_weights_and_batches(jax_grid):
    """Same initial weights per seed, the torch runner's batch order, Adam and MSE: torch
    trained from the JAX initial weights gives the JAX record's losses."""
    task = vector_task()
    cell = Cell("tiny", Scheme.parse("tied-2"), "-", "none", 0)
    jax_model = jax_runner.build_model(task, cell, SIZES)
    expected = torch_losses(task, jax_model, cell, STEPS, torch.nn.functional.mse_loss)
    got = [loss for _, loss in by_name(jax_grid[2])["tied-2"]["losses"]]
    assert got == pytest.approx(expected, rel=1e-5)


def test_the_loss_penalty_and_backward_count_by_hand():
    pred = jnp.asarray([[1.0, 2.0], [3.0, 5.0]])
    y = jnp.asarray([[1.0, 0.0], [0.0, 1.0]])
    weight = jnp.asarray([[1.0, 1.0], [0.0, 1.0]])
    task = vector_task()
    assert float(jax_runner.task_loss(task, pred, y, None)) == pytest.approx((4 + 9 + 16) / 4)
    assert float(jax_runner.task_loss(task, pred, y, weight)) == pytest.approx((4 + 16) / 3)
    logits, labels = np.array([[0.0, 1.0], [2.0, -1.0]]), np.array([1, 1])
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    entropy = Task.from_arrays(
        "c",
        np.zeros((4, 1)),
        np.array([0, 1, 0, 1]),
        np.zeros((2, 1)),
        np.array([0, 1]),
        target="classification",
    )
    got = jax_runner.task_loss(entropy, jnp.asarray(logits), jnp.asarray(labels), None)
    assert float(got) == pytest.approx(-log_softmax[[0, 1], labels].mean(), rel=1e-6)
    cost = jax_runner.BlockCost(
        jnp.asarray([3, 5]), {"kinetic": jnp.asarray([1.0, 3.0])}, jnp.asarray([2.0, 4.0])
    )
    weights = {"kinetic": jnp.asarray(0.5)}
    assert float(jax_runner.penalty(cost, weights)) == pytest.approx(0.5 * 2.0 + 0.01 * 3.0)
    nfe = np.array([3, 5])
    assert jax_runner.backward_evaluations(Scheme.parse("act-5"), nfe) == 5
    assert math.isnan(jax_runner.backward_evaluations(Scheme.parse("dopri5-1e-3"), nfe))


def test_the_grid_refuses_engines_of_the_other_framework():
    with pytest.raises(OptionError, match="engines\\[0\\]: expected one of .*'diffrax'"):
        GridConfig(engines=("torchdiffeq",), framework="jax")
    GridConfig(engines=("native", "diffrax", "scipy"), framework="jax")


# -- float64 forward parity torch <-> JAX, the same weights -------------------------------


@eqx.filter_jit
def forward(model, x):
    return jax.vmap(model.forward, in_axes=(0, None))(x, None)


def parity(task: Task, scheme: str, rows: int = 5, tol: float = 1e-10) -> None:
    s = Scheme.parse(scheme)
    cell = Cell(task.name, s, "native" if s.adaptive else "-", "none", 0)
    torch_model = torch_runner.build_model(task, cell, SIZES).double().eval()
    x = task.test.x[:rows].astype(np.float64)
    with torch.no_grad():
        expected = torch_model(torch.as_tensor(x)).numpy()
        stats = torch_model.block.last_stats
    jax_model = jax_runner.build_model(task, cell, SIZES)  # float32, built as the runner does
    with jax.enable_x64(True):
        # the torch values replace every array, in float64 (convert keeps the source dtype)
        jax_model = eqx.nn.inference_mode(torch_to_jax(torch_model, jax_model))
        got, cost = forward(jax_model, jnp.asarray(x))
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), expected, rtol=tol, atol=tol)
        expected_nfe = np.broadcast_to(np.asarray(stats.nfe_forward), (rows,))
        np.testing.assert_array_equal(np.asarray(cost.nfe), expected_nfe)
        if s.kind == "act":
            ponder = torch_model.block.last_ponder.numpy()
            np.testing.assert_allclose(np.asarray(cost.ponder), ponder, rtol=tol, atol=tol)


@pytest.mark.parametrize("scheme", ["tied-3", "untied-2", "rk4-2", "act-3", "reversible-2"])
def test_float64_parity_of_a_vector_model(scheme):
    parity(vector_task(), scheme)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["euler-3", "dopri5-1e-6"])
def test_float64_parity_of_a_vector_model_more_schemes(scheme):
    parity(vector_task(), scheme, tol=1e-9 if scheme.startswith("dopri5") else 1e-10)


@pytest.mark.slow  # fast suite: the vector-head parity and the first-steps test cover it
def test_float64_parity_of_a_sequence_classifier():
    parity(sequence_task(), "act-2")  # embedding, transformer field, halting per position, pool


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["tied-2", "rk4-2", "reversible-2", "untied-2"])
def test_float64_parity_of_a_sequence_classifier_more_schemes(scheme):
    parity(sequence_task(), scheme)


# -- slow: every scheme, regularisers, engines, seconds budgets ------------------------------


@pytest.mark.slow
def test_every_scheme_and_regulariser_trains_in_jax(tmp_path):
    schemes = ("tied-3", "untied-3", "rk4-3", "dopri5-1e-2", "act-3", "reversible-3")
    config = GridConfig(
        tasks=(vector_task(),),
        schemes=schemes,
        regularizers=("none", "kinetic", "steer", "error"),
        seeds=1,
        budget_steps=STEPS,
        framework="jax",
    )
    records = run_grid(config, tmp_path)
    assert len(records) == len(config.cells()) == 5 + 4
    a = by_name(records)
    # the untied and reversible stacks start from copies of the tied field
    assert a["untied-3"]["losses"][0][1] == pytest.approx(a["tied-3"]["losses"][0][1], rel=1e-6)
    assert a["reversible-3"]["parameters"] == a["untied-3"]["parameters"]
    fixed_costs(a, {"tied-3": 3, "untied-3": 3, "rk4-3": 12, "reversible-3": 6})
    assert a["rk4-3"]["parameters"] == a["tied-3"]["parameters"]
    assert 1 <= a["act-3"]["test_nfe_mean"] <= 3
    assert a["act-3"]["test_nfe_batch"] == max(a["act-3"]["test_nfe_forward"][:16])
    adaptive = a["dopri5-1e-2 native"]
    assert adaptive["test_nfe_mean"] >= 2 + 6 and math.isnan(adaptive["train_nfe_backward"])
    kinetic = a["dopri5-1e-2 native +kinetic"]
    assert kinetic["losses"][0][1] == pytest.approx(adaptive["losses"][0][1], rel=1e-4)
    assert kinetic["losses"][-1][1] != adaptive["losses"][-1][1]  # the penalty trains
    error = a["dopri5-1e-2 native +error"]  # R_E from the step records, weight 100 at first
    assert error["losses"][0][1] == pytest.approx(adaptive["losses"][0][1], rel=1e-6)
    assert error["losses"][-1][1] != adaptive["losses"][-1][1]
    assert a["dopri5-1e-2 native +steer"]["losses"][0][1] != adaptive["losses"][0][1]


@pytest.mark.slow
def test_the_engines_of_jax_start_from_the_same_model(tmp_path):
    config = GridConfig(
        tasks=(vector_task(),),
        schemes=("dopri5-1e-4",),
        engines=("native", "diffrax", "scipy"),
        seeds=1,
        budget_steps=2,
        framework="jax",
    )
    records = by_name(run_grid(config, tmp_path))
    native = records["dopri5-1e-4 native"]
    for engine in ("diffrax", "scipy"):
        other = records[f"dopri5-1e-4 {engine}"]
        assert other["losses"][0][1] == pytest.approx(native["losses"][0][1], rel=1e-4)
        assert other["test_metric"] == pytest.approx(native["test_metric"], rel=1e-2)


@pytest.mark.slow
def test_a_seconds_budget_excludes_compilation(tmp_path):
    config = GridConfig(
        tasks=(vector_task(),), schemes=("tied-2",), seeds=1, budget_seconds=0.3, framework="jax"
    )
    (record,) = run_grid(config, tmp_path)
    # compiling takes seconds: counted, it would end the budget after one step
    assert record["train_seconds"] >= 0.3 and record["steps"] >= 5
    assert record["seconds_per_step"] < 0.3


@pytest.mark.slow
def test_a_sequence_classifier_trains_as_torchs(tmp_path):
    task = sequence_task()
    config = GridConfig(tasks=(task,), schemes=("tied-2",), seeds=1, budget_steps=STEPS)
    (record,) = run_grid(config.replace(framework="jax"), tmp_path)
    cell = Cell(task.name, Scheme.parse("tied-2"), "-", "none", 0)
    jax_model = jax_runner.build_model(task, cell, task.sizes)
    expected = torch_losses(task, jax_model, cell, STEPS, torch.nn.functional.cross_entropy)
    assert [loss for _, loss in record["losses"]] == pytest.approx(expected, rel=1e-4)
    assert 0.0 <= record["test_metric"] <= 1.0  # an error rate
