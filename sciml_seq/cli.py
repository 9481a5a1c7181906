"""The ``sciml-seq`` command line.

Every command reports a :class:`~sciml_seq.errors.SciMLSeqError` (a bad option,
a malformed file, a shape mismatch, an unavailable ``--device``) and every usage
error of the command line (an unknown command or option, a bad value) as one
line ``error: <message>`` on stderr and exits with code 2, typer's usage-error
code, without a traceback or a box; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

from .errors import SciMLSeqError

USAGE_ERROR = 2
"""The exit code of a :class:`~sciml_seq.errors.SciMLSeqError` (as typer's usage errors)."""


class _ReportErrors(TyperGroup):
    """The root command group: a SciMLSeqError from any subcommand becomes one line + exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SciMLSeqError as err:
            _fail(str(err))
        except TyperException as err:  # typer's (vendored click's) usage errors
            _usage_error(err)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except TyperException as err:  # typer's (vendored click's) usage errors
            _usage_error(err)


def _usage_error(err: TyperException) -> None:
    """A usage error as one line, instead of typer's box; a bare group still shows its help."""
    if type(err).__name__ == "NoArgsIsHelpError" or not hasattr(err, "format_message"):
        raise err
    _fail(err.format_message())


def _fail(message: str) -> None:
    """Print ``error: <message>`` (one line) on stderr and exit with :data:`USAGE_ERROR`."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code=USAGE_ERROR)


def _check_device(device: str | None, framework: str = "torch") -> None:
    """Refuse a ``--device`` this process cannot use (``DeviceError``: one ``error:`` line)."""
    if device is None:
        return
    from .errors import DeviceError

    if framework == "jax" and isinstance(device, str) and device.startswith("cuda"):
        import jax

        try:
            jax.devices("gpu")
        except RuntimeError:
            raise DeviceError(f"device: got {device!r} but JAX sees no GPU here") from None
        return
    from .torch.checks import check_device

    check_device("device", device)


app = typer.Typer(
    cls=_ReportErrors,
    help="Continuous-depth sequence models for scientific ML.",
    no_args_is_help=True,
)
console = Console()


@app.callback()
def main() -> None:
    """sciml-seq: compare adaptive ODE solvers with fixed-depth networks, and more."""


def _names(value: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")``; None stays None."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


QUICK_GRID = {
    "tasks": ("oscillator",),
    "schemes": ("untied-8", "tied-8", "rk4-4", "dopri5-1e-3", "act-8"),
    "regularizers": ("none", "error"),
    "seeds": 1,
    "budget_steps": 600,
}
"""What ``sciml-seq compare --quick`` (``make demo``) runs unless told otherwise."""


@app.command()
def compare(
    task: Annotated[
        str | None, typer.Option(help="Tasks, comma-separated (sciml_seq.compare.TASKS).")
    ] = None,
    schemes: Annotated[
        str | None,
        typer.Option(help="Depth schemes, e.g. untied-8,tied-8,rk4-8,dopri5-1e-3,act-8."),
    ] = None,
    engines: Annotated[
        str | None, typer.Option(help="Engines of the adaptive schemes (native, torchdiffeq, ...).")
    ] = None,
    regularizers: Annotated[
        str | None,
        typer.Option(help="Regularisers of the adaptive schemes: none, rnode, steer, error, ..."),
    ] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds per cell (0..n-1).")] = None,
    budget_steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps per cell.")
    ] = None,
    budget_seconds: Annotated[
        float | None, typer.Option(help="Seconds of training per cell (instead of steps).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda[:i].")] = None,
    framework: Annotated[str | None, typer.Option(help="torch or jax.")] = None,
    data: Annotated[
        str | None, typer.Option(help="Folder of files a task reads (etth1: the ETT CSVs).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="A TOML file with the same keys; flags given here override it."),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Quick sizes (and, alone, the demo grid): ~2 min on a CPU."),
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder of records.jsonl and the plots.")] = Path(
        "outputs/compare"
    ),
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
) -> None:
    """Train depth schemes (residual stacks, fixed and adaptive ODE solvers, ACT halting,
    reversible stacks) on tasks with the same data, weights and budget; print the table,
    draw Pareto plots and NFE histograms.  Finished cells are skipped on a rerun."""
    from rich.markdown import Markdown
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .compare import GridConfig, run_grid
    from .compare.report import (
        paper_check,
        paper_check_table,
        plot_nfe_histograms,
        plot_pareto,
        summarize,
        summary_table,
    )

    given = {
        "tasks": _names(task),
        "schemes": _names(schemes),
        "engines": _names(engines),
        "regularizers": _names(regularizers),
        "seeds": seeds,
        "budget_steps": budget_steps,
        "budget_seconds": budget_seconds,
        "device": device,
        "framework": framework,
        "data": data,
        "threads": threads,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if quick:
        given["quick"] = True
    if config is not None:
        grid = GridConfig.from_toml(config).replace(**given)
    else:
        base = QUICK_GRID if quick and not (set(given) - {"quick", "threads", "device"}) else {}
        grid = GridConfig(**{**base, **given})
    _check_device(grid.device, grid.framework)
    cells = grid.cells()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        overall = bar.add_task("cells", total=len(cells))
        current = bar.add_task("", total=None)

        def on_cell(cell, record) -> None:
            if record is not None:
                bar.advance(overall)

        def progress(cell, step: int, total: int, loss: float) -> None:
            description = f"{cell.task} {cell.name} seed {cell.seed}: loss {loss:.2e}"
            bar.update(current, completed=step, total=total or None, description=description)

        records = run_grid(grid, out, progress=progress, on_cell=on_cell)
    summaries = summarize(records)
    wide = console if console.is_terminal else Console(width=160)  # logs: no wrapped rows
    for name in grid.tasks:
        wide.print(summary_table(summaries, GridConfig.task_name(name)))
    checks = paper_check(summaries)
    if checks:
        wide.print(Markdown(paper_check_table(checks)))
    console.print(f"records: {out / 'records.jsonl'}")
    console.print(
        f"plots: {plot_pareto(summaries, out / 'pareto.png')}, "
        f"{plot_nfe_histograms(summaries, out / 'nfe_histograms.png')}"
    )


@app.command()
def doctor() -> None:
    """Check the optional backends without starting them: the Julia engine (juliacall,
    a Julia >= 1.10 that answers, the SciMLSeqJL package); exit 1 when NOT OK."""
    from .julia.__main__ import doctor as julia_doctor

    code = julia_doctor()
    if code:
        raise typer.Exit(code=code)


forecast_app = typer.Typer(help="Time-series forecasting benchmarks.", no_args_is_help=True)
app.add_typer(forecast_app, name="forecast")


@forecast_app.command("ett")
def forecast_ett(
    root: Annotated[Path, typer.Option(help="Folder of your ETTh1.csv / ETTh2.csv copies.")],
    datasets: Annotated[str, typer.Option(help="Comma-separated: ETTh1,ETTh2.")] = "ETTh1,ETTh2",
    horizons: Annotated[str, typer.Option(help="Forecast lengths.")] = "96,192,336,720",
    inputs: Annotated[str, typer.Option(help="Input lengths (96, 336, 512).")] = "96,336",
    seeds: Annotated[str, typer.Option(help="Seeds of the trained models.")] = "0,1,2",
    models: Annotated[str, typer.Option(help="Closed-form and trained models.")] = (
        "linear,nlinear-cf,nlinear,dlinear,patchtst,itransformer,s4d"
    ),
    budget_seconds: Annotated[float, typer.Option(help="Training seconds per fit.")] = 60.0,
    max_epochs: Annotated[int | None, typer.Option(help="Epoch cap per fit.")] = None,
    patience: Annotated[int | None, typer.Option(help="Validation passes to wait.")] = None,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    out: Annotated[Path | None, typer.Option(help="Markdown file for the tables.")] = None,
) -> None:
    """The ETT long-horizon protocol (as benchmarks/ett_forecasting.py): every model on every
    (data set, input, horizon), mean ± std over seeds, published PatchTST/DLinear beside."""
    import torch

    from .data.timeseries import DATASETS, parse_grid
    from .data.timeseries.protocol import grid_tables
    from .torch.ett_protocol import CONTINUOUS, TrainSettings, model_names, run_grid
    from .train.param_groups import param_groups

    _check_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    settings = TrainSettings(
        budget_seconds=budget_seconds, max_epochs=max_epochs, patience=patience
    )
    records = run_grid(
        root,
        datasets=parse_grid("--datasets", datasets, DATASETS),
        horizons=parse_grid("--horizons", horizons),
        inputs=parse_grid("--inputs", inputs),
        seeds=parse_grid("--seeds", seeds),
        models=parse_grid("--models", models, model_names()),
        settings=settings,
        device=device,
        make_optimizer=lambda model, lr: torch.optim.Adam(param_groups(model, lr)),
        on_record=lambda r: console.print(
            f"{r.dataset} {r.seq_len}->{r.pred_len} {r.model} seed {r.seed}: "
            f"test MSE {r.test_mse:.4f} MAE {r.test_mae:.4f}"
        ),
    )
    text = "\n".join(grid_tables(records, continuous=CONTINUOUS))
    console.print(text, soft_wrap=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        console.print(f"wrote {out}")


data_app = typer.Typer(help="PDE datasets: list and generate (HDF5).", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list() -> None:
    """List the PDE datasets with their equation, grid, times, parameters and solver."""
    from rich.markup import escape

    from .data.pde import EQUATIONS

    for name, eq in EQUATIONS.items():
        size = " x ".join([str(eq.resolution)] * eq.ndim)
        params = ", ".join(f"{k}={v:g}" for k, v in eq.params.items())
        console.print(f"[bold]{name}[/bold]  {escape(eq.summary)}")
        console.print(
            f"    channels {', '.join(eq.channels)}; grid {size} on [0, {eq.domain_extent:.4g})"
            f"^{eq.ndim}; {eq.n_times} snapshots, dt {eq.dt:g} ({eq.substeps} substeps)"
        )
        console.print(f"    {escape(params)}")
        console.print(f"    solver {eq.stepper}")


@data_app.command("generate")
def data_generate(
    name: Annotated[str, typer.Argument(help="Dataset name (see `sciml-seq data list`).")],
    out: Annotated[Path, typer.Option(help="HDF5 file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of trajectories.")] = 16,
    resolution: Annotated[
        int | None, typer.Option(min=4, help="Grid points per axis (default: the dataset's).")
    ] = None,
    n_times: Annotated[
        int | None, typer.Option(min=2, help="Saved snapshots including t=0.")
    ] = None,
    dt: Annotated[float | None, typer.Option(help="Time between snapshots.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Trajectory i uses rng(\\[seed, i]).")] = 0,
    param: Annotated[
        list[str], typer.Option(help="Equation parameter KEY=VALUE, repeatable.")
    ] = [],  # noqa: B006 - typer reads the default
    chunk_size: Annotated[int, typer.Option(min=1, help="Trajectories per batch.")] = 16,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Generate NAME's trajectories from random initial conditions and write them to OUT."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .data.pde import generate_to_file, list_equations, open_trajectories

    if name not in list_equations():
        raise typer.BadParameter(
            f"unknown dataset {name!r}; valid: {', '.join(list_equations())}", param_hint="NAME"
        )
    if out.exists() and not overwrite:
        raise typer.BadParameter(
            f"{out} exists; pass --overwrite to replace it", param_hint="--out"
        )
    params = {}
    for item in param:
        key, _, value = item.partition("=")
        try:
            params[key] = float(value)  # no '=' leaves value empty: float('') raises
        except ValueError:
            raise typer.BadParameter(
                f"expected KEY=NUMBER, got {item!r}", param_hint="--param"
            ) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    out.parent.mkdir(parents=True, exist_ok=True)
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{name}", total=n)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done)

        generate_to_file(
            out,
            name,
            n,
            resolution=resolution,
            n_times=n_times,
            dt=dt,
            seed=seed,
            params=params or None,
            chunk_size=chunk_size,
            progress=report,
        )
    with open_trajectories(out) as f:
        console.print(f"{out}: {name}, u {f.shape} float32, t in [0, {f.t[-1]:.4g}], seed {seed}")


train_app = typer.Typer(help="Train models.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _ints(text: str | None, option: str) -> list[int] | None:
    """``"0,1,3"`` as ``[0, 1, 3]`` (``None`` stays ``None``); a usage error names ``option``."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers; got {text!r}", param_hint=option
        ) from None


def _model_options(items: list[str]) -> dict:
    import json

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected KEY=VALUE (VALUE as JSON); got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@train_app.command("operator")
def train_operator(
    data: Annotated[
        Path, typer.Option(exists=True, help="Trajectories (HDF5 from `sciml-seq data`).")
    ],
    model: Annotated[str, typer.Option(help="scot-t, scot-b, scot-l, fno or convs5.")] = "scot-t",
    out: Annotated[Path, typer.Option(help="Checkpoint directory.")] = Path("outputs/operator"),
    steps: Annotated[int, typer.Option(min=1)] = 1000,
    batch_size: Annotated[int, typer.Option(min=1, help="Global batch.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-4,
    weight_decay: float = 1e-6,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up steps.")] = 0,
    clip_norm: Annotated[float, typer.Option(help="Gradient-norm clip (0: off).")] = 5.0,
    precision: Annotated[str, typer.Option(help="fp32, bf16 or fp16 (CUDA).")] = "fp32",
    compile_mode: Annotated[
        str | None,
        typer.Option(
            "--compile", help="torch.compile mode (default, reduce-overhead, ...); off if unset."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seed: int = 0,
    channel_slices: Annotated[
        str | None, typer.Option(help="Channel groups of the loss, e.g. 0,1,3,4.")
    ] = None,
    max_lead: Annotated[int | None, typer.Option(help="Largest lead in steps.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(min=1)] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Wall-clock budget.")] = None,
    option: Annotated[
        list[str], typer.Option(help="Model option KEY=VALUE (JSON value), repeatable.")
    ] = [],  # noqa: B006 - typer reads the default
    resume: Annotated[
        Path | None,
        typer.Option(help="Checkpoint to continue from (same model, data and batch size)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace the checkpoints of a run already in --out.")
    ] = False,
    normalize: Annotated[
        bool, typer.Option(help="Standardise channels with the data's mean/std in the model.")
    ] = True,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
) -> None:
    """Train an operator on all-to-all trajectory pairs (works under torchrun)."""
    import torch

    from .train import distributed
    from .train.operator_run import train_operator as run
    from .train.trainer import TrainConfig

    _check_device(device)
    if threads:
        torch.set_num_threads(threads)
    try:
        config = TrainConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup,
            clip_norm=clip_norm or None,
            precision=precision,
            compile=compile_mode,
            channel_slice_list=_ints(channel_slices, "--channel-slices"),
            seed=seed,
            checkpoint_every=checkpoint_every,
        )
        result = run(
            data,
            model=model,
            out=out,
            config=config,
            device=device,
            max_lead=max_lead,
            model_options=_model_options(option),
            resume=resume,
            overwrite=overwrite,
            max_seconds=max_seconds,
            normalize=normalize,
            progress=True,
        )
        if distributed.is_main():
            losses = result["losses"]
            last = f"{losses[-1]:.4g}" if losses else "-"
            console.print(
                f"{model}: {result['parameters']:,} parameters, {len(losses)} steps in "
                f"{result['seconds']:.1f} s (now at step {result['steps']}), last loss {last}; "
                f"checkpoint {result['checkpoint']}"
            )
    finally:  # also after an error, so that every torchrun rank leaves the group
        distributed.shutdown()


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="A checkpoint directory (run/final).")],
    data: Annotated[Path, typer.Option(exists=True, help="Test trajectories (HDF5).")],
    out: Annotated[Path, typer.Option(help="Where metrics.json and PNGs go.")] = Path(
        "outputs/evaluation"
    ),
    lead_steps: Annotated[
        str | None, typer.Option(help="One-shot leads in steps, e.g. 1,2,4 (default: all).")
    ] = None,
    rollout_step: Annotated[int, typer.Option(min=1, help="Steps per rollout call.")] = 1,
    plots: Annotated[int, typer.Option(min=0, help="Trajectories to draw.")] = 2,
    channel_slices: Annotated[str | None, typer.Option(help="Channel groups, 0,1,3,4.")] = None,
    device: str = "cpu",
) -> None:
    """Evaluate an operator checkpoint: one-shot at lead times, rollout, figures."""
    from rich.progress import Progress
    from rich.table import Table

    from .train.operator_run import evaluate_operator

    _check_device(device)
    with Progress(console=console, transient=True) as progress:
        progress.add_task("evaluating", total=None)
        metrics = evaluate_operator(
            checkpoint,
            data,
            out,
            lead_steps=_ints(lead_steps, "--lead-steps"),
            rollout_step=rollout_step,
            n_plots=plots,
            device=device,
            channel_slice_list=_ints(channel_slices, "--channel-slices"),
        )
    table = Table(title=f"{checkpoint} on {data}")
    baselines = metrics["baselines"]
    columns = ("mode", "lead steps", "lead time", "median rel L1", "median rel L2")
    for column in (*columns, *(f"{name} rel L1" for name in baselines)):
        table.add_column(column)
    for mode in ("one_shot", "rollout"):
        for i, row in enumerate(metrics[mode]):
            table.add_row(
                mode,
                str(row["lead_steps"]),
                f"{row['lead_time']:.3g}",
                f"{row['median_rel_l1']:.4f}",
                f"{row['median_rel_l2']:.4f}",
                *(f"{b[mode][i]['median_rel_l1']:.4f}" for b in baselines.values()),
            )
    console.print(table)
    console.print(f"metrics and figures: {out}")


if __name__ == "__main__":  # pragma: no cover
    app()
