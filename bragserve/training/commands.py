"""The training commands (``bragserve train-nli``, ``bragserve train-disfluency``): each builds a model that ships
inside the package, offline, from the shared data, and writes a report of what it measured.

Kept apart from bragserve/cli.py, which serves and queries: these run once per release, not per deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


def _training_inputs(writes: str) -> Callable[[Callable], Callable]:
    """--data, --squad and --out: where every trainer reads its text and writes what it ships."""
    def decorate(command: Callable) -> Callable:
        for option in reversed([
            click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                         default=Path("../shared/data/nli"), show_default=True, help="The shared NLI data folder."),
            click.option("--squad", "squad_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         default=Path("../shared/data/squad/dev-v1.1.json"), show_default=True,
                         help="SQuAD v1.1 dev JSON."),
            click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
                         help=f"Where to write {writes}."),
        ]):
            command = option(command)
        return command
    return decorate


@click.command("train-nli")
@_training_inputs("the checkpoint and training_report.json")
@click.option("--epochs", default=2.0, show_default=True, type=float)
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--punct-dropout", default=0.0, show_default=True, type=float,
              help="Share of training pairs shown with punctuation stripped (robustness to unpunctuated text).")
@click.option("--max-steps", default=None, type=int, help="Stop after this many steps (smoke tests).")
@click.option("--max-train-pairs", default=None, type=int, help="Train on a slice (smoke tests).")
@click.option("--max-eval-pairs", default=None, type=int, help="Evaluate on a slice of each held-out set.")
def train_nli(data_dir: Path, squad_path: Path, out_dir: Path, epochs: float, batch_size: int, seed: int,
              max_steps: int | None, max_train_pairs: int | None, max_eval_pairs: int | None,
              punct_dropout: float) -> None:
    """Fine-tune the bundled MiniLM into a 3-way NLI cross-encoder and evaluate it on held-out sets.

    Example: bragserve train-nli --out bragserve/models/nli-minilm-l6
    """
    from bragserve.embedding import resolve_embedder_path
    from bragserve.training.nli_trainer import TrainConfig, train

    cfg = TrainConfig(data_dir=data_dir, squad_path=squad_path, out_dir=out_dir,
                      base_model=resolve_embedder_path("bundled"), epochs=epochs, batch_size=batch_size, seed=seed,
                      max_steps=max_steps, max_train_pairs=max_train_pairs, max_eval_pairs=max_eval_pairs,
                      punct_dropout=punct_dropout)
    report = train(cfg)
    for name, result in report["evaluation"].items():
        click.echo(f"{name:<18} accuracy {result['accuracy']:.4f} ({result['pairs']} pairs)")
    click.echo(f"checkpoint and report: {out_dir}")


@click.command("train-disfluency")
@_training_inputs("head.safetensors, config.json and training_report.json")
@click.option("--epochs", default=6, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-texts", default=None, type=int, help="Train on a slice of the texts (smoke tests).")
def train_disfluency(data_dir: Path, squad_path: Path, out_dir: Path, epochs: int, seed: int,
                     max_texts: int | None) -> None:
    """Train the replaced-token head the HotFlip detector uses (about 3.5 minutes on 2 cores).

    Example: bragserve train-disfluency --out bragserve/models/disfluency-minilm-l6
    """
    from bragserve.training.disfluency_trainer import TrainConfig, train

    report = train(TrainConfig(data_dir=data_dir, squad_path=squad_path, out_dir=out_dir, epochs=epochs, seed=seed,
                               max_texts=max_texts))
    last = report["fit"]["history"][-1]
    click.echo(f"held-out tokens: accuracy {last['accuracy']:.4f}, TPR {last['tpr']:.4f}, FPR {last['fpr']:.4f}")
    click.echo(f"held-out SQuAD worst-window quantiles: {report['held_out_squad']['worst_window_quantiles']}")
    click.echo(f"head and report: {out_dir}")
