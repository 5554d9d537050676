"""The authors' released PyTorch training code, run on the copy-paste
experiment at the regime of one of our presets, timed phase by phase.

    python authors_copy_paste.py --checkout DIR --preset PRESET.toml --seed S
        [--threads T] [--released-pairs] > timings.jsonl

DIR is a checkout of github.com/vsubramaniam851/untrainable-networks
(run-authors.sh fetches it at a pinned commit into a temporary directory);
nothing of it is kept here. Their entry point does not run as-is, so this
driver imports their modules and calls their `train_lm` once per arm, with
these adaptations (each is printed to stderr when it is made):

1. Imports. `language_modeling/__init__.py` imports `ParityLSTM`, which
   `rnn_models.py` does not define, and `rep_sim/layer_sim.py` imports a
   module `rep_sim.reduction` that is not in the repository: the package is
   registered without running its `__init__`, `ParityLSTM` is bound to their
   `ParityRNN`, and `rep_sim.reduction` is an empty module (its function is
   used only by code the copy-paste task does not reach). `wandb`,
   `transformers` and `pytorch_pretrained_bert` are stand-ins with no-op
   functions: the first logs to a server, the other two serve WikiText only.
2. Entry point. Their `__main__` passes `multi_gpu` to `train_lm`, which
   does not accept it: `train_lm` is called directly, one call per arm.
3. Regime. `train_lm` hard-codes L in 20..=40 and a guide of d 512, 16
   heads: their `get_dataloaders` and `Transformer` are replaced in
   `language_model`'s namespace by functions that build *their* dataset,
   collate function and Transformer class with the preset's lengths,
   sizes, evaluation batch and guide width, heads, depth, feed-forward
   width and dropout.
4. Pairs. Their `layermap_sim` stores each pair's term under the RNN layer's
   name, so of the 32 (guide tap, RNN layer) pairs only the last one per
   RNN layer reaches the loss (4 terms) although all 32 are computed. Our
   preset sums all 32 (`pairs.last_guide_wins = false`); the one line that
   stores the term is keyed by the pair instead, so that both sides do the
   same arithmetic. `--released-pairs` leaves it as released.
5. CPU only: the script hides any GPU (CUDA_VISIBLE_DEVICES="").

Everything else is theirs as released: the data generated per example at
each epoch, the evaluation (validation loss, then test accuracy, before each
epoch's training), the per-step gradient norm and mean step size, the
checkpoint of the best epoch (`torch.save`), the RNN's chained initial
states.

Timing: every arm's wall time, split by wrapping their data loaders (time
inside `next()` is data; time between two batches is the work on a batch,
per loader: training steps, validation, test accuracy) and their functions
`rep_similarity_loss` (the guidance term's forward: guide forward, hooks,
CKA), `get_grad_norm` and `avg_step_size` (per-step logging), and
`torch.save`/`torch.load` (checkpoints). One JSON line per arm on stdout,
among the lines their code prints there.
"""

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import tomllib
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

# The released line that stores a pair's term, and its replacement (4.).
PAIR_LINE = "sim_scores[tr_layer] = sim"
PAIR_LINE_SUMMED = "sim_scores[(layer, tr_layer)] = sim"


def note(message):
    print(f"[authors] {message}", file=sys.stderr, flush=True)


class Clock:
    """Seconds per phase of the arm that is running."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def reset(self):
        self.seconds = defaultdict(float)


CLOCK = Clock()


def timed(function, phase):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            CLOCK.seconds[phase] += time.perf_counter() - start

    return wrapper


class TimedLoader:
    """Their DataLoader, with the time spent producing batches (`data`) and
    the time spent on each batch (`phase`) counted apart."""

    def __init__(self, loader, phase):
        self.loader, self.phase = loader, phase
        self.dataset = loader.dataset

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                CLOCK.seconds["data"] += time.perf_counter() - start
                return
            handed = time.perf_counter()
            CLOCK.seconds["data"] += handed - start
            yield batch
            CLOCK.seconds[self.phase] += time.perf_counter() - handed


def stub(name, **functions):
    module = types.ModuleType(name)
    module.__dict__.update(functions)
    sys.modules[name] = module
    return module


def import_their_modules(checkout, released_pairs):
    """Their `language_model` module, importable despite adaptations 1 and 4."""
    layer_sim = checkout / "rep_sim" / "layer_sim.py"
    source = layer_sim.read_text()
    if not released_pairs and PAIR_LINE in source:
        if source.count(PAIR_LINE) != 1:
            sys.exit(f"{layer_sim}: expected one `{PAIR_LINE}`; is this the pinned commit?")
        layer_sim.write_text(source.replace(PAIR_LINE, PAIR_LINE_SUMMED))
        note("layer_sim.py: every (guide tap, RNN layer) pair's term is summed (adaptation 4)")
    sys.path.insert(0, str(checkout))
    noop = lambda *args, **kwargs: None  # noqa: E731
    stub("wandb", init=noop, log=noop, finish=noop)
    stub("transformers")
    stub("pytorch_pretrained_bert", BertTokenizer=None)
    stub("rep_sim.reduction", random_projection=None)
    package = stub("language_modeling")
    package.__path__ = [str(checkout / "language_modeling")]
    from language_modeling import rnn_models, transformer

    package.TransformerLM, package.Transformer = transformer.TransformerLM, transformer.Transformer
    package.RNNLM, package.ParityLSTM = rnn_models.RNNLM, rnn_models.ParityRNN
    note("imports: language_modeling registered without its __init__, ParityLSTM = ParityRNN, "
         "stand-ins for wandb, transformers, pytorch_pretrained_bert, rep_sim.reduction (adaptation 1)")
    from language_modeling import language_model

    return language_model


def configure(lm, preset):
    """Adaptation 3: their data and guide at the preset's sizes; and the timers."""
    from language_modeling import copy_paste

    task, guide, train = preset["task"], preset["guide"], preset["train"]
    lengths = task["copy_paste"]["min_len"], task["copy_paste"]["max_len"]

    def get_dataloaders(batch_size, num_samples, seq_min_len, seq_max_len, vocab_size):
        train_size = int(0.8 * num_samples)
        val_size = num_samples - train_size
        make = lambda n: copy_paste.CopyPasteDataset(n, *lengths, vocab_size)  # noqa: E731
        loader = lambda data, batch, shuffle: torch.utils.data.DataLoader(  # noqa: E731
            data, batch_size=batch, shuffle=shuffle, collate_fn=copy_paste.collate_fn)
        eval_batch = train["eval_batch_size"]
        return (TimedLoader(loader(make(train_size), batch_size, True), "train"),
                TimedLoader(loader(make(val_size), eval_batch, True), "validation"),
                TimedLoader(loader(make(val_size), eval_batch, False), "test"))

    def guide_transformer(vocab_size, **_their_sizes):
        return lm_transformer(vocab_size, d_model=guide["d_model"], nhead=guide["heads"],
                              num_layers=guide["layers"], dim_feedforward=guide["ff"],
                              dropout=guide["dropout"])

    lm_transformer = lm.Transformer
    lm.get_dataloaders = get_dataloaders
    lm.Transformer = guide_transformer
    note(f"regime: L in {lengths[0]}..={lengths[1]}, evaluation batch {train['eval_batch_size']}, "
         f"guide d {guide['d_model']}, {guide['heads']} heads, {guide['layers']} layers, "
         f"ff {guide['ff']}, dropout {guide['dropout']} (adaptation 3)")
    lm.rep_similarity_loss = timed(lm.rep_similarity_loss, "guidance_term")
    lm.get_grad_norm = timed(lm.get_grad_norm, "step_logging")
    lm.avg_step_size = timed(lm.avg_step_size, "step_logging")
    torch.save = timed(torch.save, "checkpoint")
    torch.load = timed(torch.load, "checkpoint")


def arms(preset, seed):
    """Their `train_lm` arguments for the guide alone and each arm of the preset."""
    target, guide = preset["target"], preset["guide"]
    guide_name = f"guide-seed{seed}"
    rnn = dict(student_model="RNN", embedding_dim=target["embedding"],
               hidden_dim=target["hidden"], num_layers=target["layers"],
               fc_dim=target["hidden"], nhead=guide["heads"])
    schedule = lambda t: dict(num_epochs=t["epochs"], batch_size=t["batch_size"],  # noqa: E731
                              lr=t["learning_rate"])
    yield "guide", guide_name, dict(
        repr_sim=False, student_model="Transformer", hidden_dim=guide["d_model"],
        num_layers=guide["layers"], fc_dim=guide["ff"], nhead=guide["heads"],
        **schedule(preset["guide_train"]))
    for arm in preset["arms"]:
        guided = arm.get("guided", False)
        options = dict(repr_sim=guided, rep_dist="CKA", rep_sim_alpha=preset["train"]["alpha"],
                       target_model="transformer", target_model_name=f"{guide_name}.pt",
                       pretrained=arm.get("guide") == "trained", **rnn,
                       **schedule(preset["train"]))
        yield arm["name"], f"{arm['name']}-seed{seed}", options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--preset", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--released-pairs", action="store_true")
    parser.add_argument("--epochs", type=int, help="every arm's epochs (a quick check)")
    parser.add_argument("--samples", type=int, help="task.samples (a quick check)")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    preset = tomllib.loads(options.preset.read_text())
    if options.samples:
        preset["task"]["samples"] = options.samples
    if options.epochs:
        preset["train"]["epochs"] = preset["guide_train"]["epochs"] = options.epochs
    lm = import_their_modules(options.checkout.resolve(), options.released_pairs)
    configure(lm, preset)
    work = Path(tempfile.mkdtemp(prefix="authors-run-"))
    os.chdir(work)  # they write saved_models/ and logs/ under the working directory
    (work / "saved_models").mkdir()
    for arm, name, kwargs in arms(preset, options.seed):
        np.random.seed(options.seed)
        torch.manual_seed(options.seed)
        CLOCK.reset()
        args = argparse.Namespace(exp_name=name, num_samples=preset["task"]["samples"],
                                  logging="logs", seed=options.seed)
        start = time.perf_counter()
        lm.train_lm(args, name, "copy-paste", context_length=0, accumulation=1,
                    use_noise=False, **kwargs)
        wall = time.perf_counter() - start
        phases = {k: round(v, 3) for k, v in CLOCK.seconds.items()}
        accuracies = json.loads((work / "logs" / name / "info.json").read_text())["accuracies"]
        print(json.dumps({"side": "theirs", "seed": options.seed, "arm": arm,
                          "wall_s": round(wall, 3), "phases": phases,
                          "last_test_accuracy": accuracies[-1][0]}), flush=True)


if __name__ == "__main__":
    main()
