"""Run configuration: frozen dataclasses, YAML loading, dotted overrides, validation.

One YAML file describes a run with four sections (``data``, ``model``, ``training``,
``decoding``). Every key is typed; an unknown key, a value of the wrong type or an impossible
value raises :class:`~softalign.errors.ConfigError` naming the dotted key, e.g.
``config key 'training.lr': expected a number, got 'fast'``.

YAML aliases (``*name``) are refused when the file is parsed, before anything is built: a
few hundred bytes of nested aliases expand to gigabytes ("billion laughs"), and an alias
inside its own anchor makes a structure that never ends. A config has no need of them.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from softalign.errors import ConfigError

ATTENTION_TYPES = ("none", "additive", "dot", "scaled_dot", "general")
RNN_TYPES = ("gru", "lstm")
# training.precision, decoding.precision and --precision (what each means: precision.py)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
BACKENDS = ("auto", "reference", "fast")  # what computes the model: softalign/backend.py
SCHEDULES = ("plateau", "cosine", "linear")  # learning-rate schedules: train/schedules.py


@dataclass(frozen=True)
class VocabConfig:
    # SentencePiece model type: unigram | bpe; none = pre-segmented text (whitespace tokens,
    # a word vocabulary of the ``size`` most frequent training tokens)
    type: str = "unigram"
    size: int = 8000  # per side, or the joint size when ``joint``
    joint: bool = True  # one SentencePiece model for both sides (else one per side)
    # an existing SentencePiece model instead of training one, for both sides (joint: true);
    # relative to data.dir; its special ids are mapped onto softalign's
    model: str = ""
    src_model: str = ""  # an existing source SentencePiece model (with tgt_model; joint: false)
    tgt_model: str = ""  # an existing target SentencePiece model (with src_model; joint: false)
    character_coverage: float = 1.0  # share of characters the vocabulary must cover
    # SentencePiece learns from a random sample of this many training sentences (reservoir
    # sampling while it reads), so vocabulary training memory does not grow with the corpus
    sample_sentences: int = 1_000_000


@dataclass(frozen=True)
class DataConfig:
    """Where the parallel text comes from.

    Either ``corpus`` names a built-in source (``synthetic:reverse?min=5&max=40``) that
    provides all splits, or the ``*_src``/``*_tgt`` paths name plain or gzipped text files;
    relative paths are taken from ``dir``.
    """

    dir: str = "."  # folder that relative data paths start from (`--data-dir`)
    corpus: str = ""  # a built-in source: bible:en-fr, synthetic:reverse?min=5&max=40, ...
    src_lang: str = "src"  # language codes, for names and reports
    tgt_lang: str = "tgt"  # target language code
    train_src: str = ""  # parallel text files, plain or .gz, one sentence per line
    train_tgt: str = ""  # target side of train_src, line by line
    valid_src: str = ""  # validation pairs (loss, BLEU, early stopping)
    valid_tgt: str = ""  # target side of valid_src
    test_src: str = ""  # test pairs (optional; the study translates them)
    test_tgt: str = ""  # target side of test_src
    max_length: int = 100  # subword tokens per side; longer training pairs are dropped
    valid_size: int = 0  # 0 = all validation pairs; else the first N (faster validation)
    binarized: str = ""  # DIR from `softalign preprocess`: train from its memory-mapped ids
    vocab: VocabConfig = field(default_factory=VocabConfig)


@dataclass(frozen=True)
class ModelConfig:
    rnn_type: str = "gru"  # gru | lstm (encoder and decoder)
    embedding_size: int = 256  # source and target word embeddings
    encoder_hidden: int = 256  # per direction
    encoder_layers: int = 2  # stacked encoder RNN layers
    bidirectional: bool = True  # encoder states h_j = [forward h_j ; backward h_j]
    decoder_hidden: int = 512  # decoder RNN state size
    decoder_layers: int = 1  # stacked decoder RNN layers
    attention: str = "additive"  # none (RNNenc) | additive | dot | scaled_dot | general
    attention_size: int = 512  # additive attention's hidden size
    input_feeding: bool = True  # feed the previous attentional state to the decoder RNN
    bridge: bool = True  # decoder starts from tanh(W [last states]); else from zeros
    output_size: int = 512  # deep output layer; must equal embedding_size when tied
    tie_embeddings: bool = False  # generator shares the target embedding matrix
    # generator rows: "seen" = only the target words that occur in the training data (as
    # OpenNMT-py and Joey NMT build their vocabularies), "all" = every subword of the target
    # vocabulary; tied embeddings always use all
    output_vocab: str = "seen"
    dropout: float = 0.2  # on embeddings, between layers and before the generator


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = 42  # weights, dropout and batch order
    lr: float = 0.001  # Adam learning rate (after the warm-up)
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps
    # plateau: hold lr, multiply it by plateau_factor when validation stops improving;
    # cosine | linear: decay from lr to min_lr exactly at the end of the budget (max_minutes
    # of wall clock or max_steps, whichever comes first)
    schedule: str = "plateau"
    plateau_factor: float = 0.5  # lr multiplier when validation loss stops improving
    plateau_patience: int = 2  # validations without improvement before the lr decays
    min_lr: float = 1e-5  # the plateau decay stops here; cosine and linear end here
    clip_norm: float = 1.0  # gradient-norm clipping; 0 = none
    label_smoothing: float = 0.1  # share of the target probability spread over the vocabulary
    word_dropout: float = 0.0  # share of source and decoder-input words replaced by UNK
    batch_tokens: int = 2000  # padded tokens per micro-batch (per process, per accumulation)
    accumulate: int = 1  # micro-batches per process per step (effective: x processes x this)
    precision: str = "fp32"  # fp32 | bf16 | fp16 | auto (autocast; fp16: CUDA, loss-scaled)
    max_steps: int = 100000  # stop at this step
    max_minutes: float = 0.0  # budget of training, validation and checkpoint time; 0 = none
    max_epochs: int = 0  # stop after this many passes over the data; 0 = none
    valid_every: int = 500  # steps between validations (loss, perplexity, BLEU)
    valid_bleu: bool = True  # also translate the validation set (greedy) and score it
    early_stopping_patience: int = 0  # validations without improvement; 0 = never stop
    early_stopping_metric: str = "loss"  # loss | bleu
    checkpoint_every: int = 500  # steps between checkpoints
    keep_checkpoints: int = 2  # latest checkpoints kept (the best one is kept too)
    # at the end, average the last K <= average_last checkpoints, K chosen on the validation
    # loss, into RUN/averaged (needs keep_checkpoints >= average_last); 0 = off
    average_last: int = 0
    log_every: int = 50  # steps between lines of metrics.jsonl
    max_nonfinite_steps: int = 5  # stop after this many non-finite losses in a row
    threads: int = 0  # torch CPU threads; 0 = all cores
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    backend: str = "auto"  # auto | reference | fast: what computes the model (softalign/backend.py)
    tensorboard: bool = False  # also write TensorBoard event files into RUN/tb


@dataclass(frozen=True)
class DecodingConfig:
    beam: int = 5  # beam size; 1 = greedy search
    length_penalty: float = 1.0  # GNMT alpha; 0 = none
    max_length_ratio: float = 2.0  # output length limit: ratio x source length + 5
    max_length: int = 200  # subwords out; longer inputs are truncated to it with a warning
    batch_tokens: int = 4000  # source tokens per decoding batch
    precision: str = "fp32"  # fp32 | bf16 (fast: CPU with AMX/AVX-512 BF16, CUDA) | fp16 | auto


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> RunConfig:
        """Dotted-key replacement: ``cfg.replace(**{"training.lr": 1e-4})``."""
        return from_dict(apply_overrides(self.to_dict(), overrides))


# ----------------------------------------------------------------------------- loading


class YamlAliasError(yaml.YAMLError):
    """An alias (``*name``) in a config file; ``mark`` is where it is."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("YAML alias")
        self.mark = mark


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, failing at the first alias instead of expanding it."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise YamlAliasError(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` without aliases: raises :class:`YamlAliasError` at the first one."""
    loader = _NoAliasLoader(text)  # what yaml.safe_load does, with this loader
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config and apply ``key=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except YamlAliasError as exc:
        raise ConfigError(
            f"{path}: line {exc.mark.line + 1}: YAML aliases (*name) are not allowed in a "
            "config: write the value out"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: YAML syntax error: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return from_dict(apply_overrides(raw, parse_overrides(overrides or [])))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["model.attention=dot", ...]`` -> ``{"model.attention": "dot"}`` (values as YAML)."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}': expected key=value")
        try:
            parsed[key.strip()] = parse_yaml(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed[key.strip()] = value
    return parsed


def decoding_overrides(items: list[str]) -> dict[str, Any]:
    """``--set decoding.KEY=VALUE`` items of a decoding command -> ``{KEY: VALUE}``.

    Only the ``decoding`` section can change after training (the rest made the weights);
    any other key, or an unknown decoding key, is a :class:`ConfigError` naming it. Values
    are checked when applied (:meth:`RunConfig.replace`)."""
    known = [f.name for f in dataclasses.fields(DecodingConfig)]
    result = {}
    for dotted, value in parse_overrides(items).items():
        section, _, name = dotted.partition(".")
        if section != "decoding":
            raise ConfigError(
                f"--set {dotted}: only decoding.* keys can be set here "
                f"({', '.join('decoding.' + k for k in known)})"
            )
        if name not in known:
            raise ConfigError(f"config key '{dotted}': unknown key")
        result[name] = value
    return result


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted key set (``model.attention`` -> value)."""
    result = _deep_copy(raw)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"config key '{dotted}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    return value


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from nested plain data."""
    config = _build(RunConfig, raw, prefix="")
    validate(config)
    return config


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.')}': expected a section (mapping)")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"config key '{prefix}{key}': unknown key")
    values = {}
    for name in names:
        if name not in raw:
            continue
        hint = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw[name], prefix=f"{key}.")
        else:
            values[name] = _coerce(raw[name], hint, key)
    return cls(**values)


_DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 (PyYAML) reads 1e-5 as a string
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    raise ConfigError(f"config key '{key}': unsupported type {hint}")


# -------------------------------------------------------------------------- validation


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"config key '{key}': {message}")


def validate(config: RunConfig) -> None:
    """Reject impossible values, naming the key."""
    d, m, t, dec = config.data, config.model, config.training, config.decoding
    _require(
        d.vocab.type in ("unigram", "bpe", "none"),
        "data.vocab.type",
        "must be unigram, bpe or none",
    )
    _validate_vocab_models(d.vocab)
    _require(d.vocab.size >= 16, "data.vocab.size", "must be at least 16")
    _require(0 < d.vocab.character_coverage <= 1, "data.vocab.character_coverage", "in (0, 1]")
    _require(d.vocab.sample_sentences >= 1000, "data.vocab.sample_sentences", "must be >= 1000")
    _require(d.max_length >= 1, "data.max_length", "must be positive")
    _require(d.valid_size >= 0, "data.valid_size", "must be >= 0")
    if not d.corpus and not d.binarized:
        _require(bool(d.train_src), "data.train_src", "needed when data.corpus is empty")
        _require(bool(d.train_tgt), "data.train_tgt", "needed when data.corpus is empty")
        _require(bool(d.valid_src), "data.valid_src", "needed when data.corpus is empty")
        _require(bool(d.valid_tgt), "data.valid_tgt", "needed when data.corpus is empty")
    _require(m.rnn_type in RNN_TYPES, "model.rnn_type", f"must be one of {', '.join(RNN_TYPES)}")
    _require(
        m.attention in ATTENTION_TYPES,
        "model.attention",
        f"must be one of {', '.join(ATTENTION_TYPES)}, got {m.attention!r}",
    )
    for name in ("embedding_size", "encoder_hidden", "encoder_layers", "decoder_hidden"):
        _require(getattr(m, name) >= 1, f"model.{name}", "must be positive")
    _require(m.decoder_layers >= 1, "model.decoder_layers", "must be positive")
    _require(m.attention_size >= 1, "model.attention_size", "must be positive")
    _require(m.output_size >= 1, "model.output_size", "must be positive")
    _require(0 <= m.dropout < 1, "model.dropout", "must be in [0, 1)")
    _require(m.output_vocab in ("seen", "all"), "model.output_vocab", "must be seen or all")
    encoder_out = m.encoder_hidden * (2 if m.bidirectional else 1)
    if m.attention in ("dot", "scaled_dot"):
        _require(
            m.decoder_hidden == encoder_out,
            "model.attention",
            f"'{m.attention}' needs model.decoder_hidden ({m.decoder_hidden}) equal to the "
            f"encoder output size ({encoder_out})",
        )
    if m.tie_embeddings:
        _require(
            m.output_size == m.embedding_size,
            "model.tie_embeddings",
            f"needs model.output_size ({m.output_size}) == model.embedding_size "
            f"({m.embedding_size})",
        )
    _require(t.lr > 0, "training.lr", "must be positive")
    _require(t.warmup_steps >= 0, "training.warmup_steps", "must be >= 0")
    _require(0 < t.plateau_factor <= 1, "training.plateau_factor", "must be in (0, 1]")
    _require(t.plateau_patience >= 0, "training.plateau_patience", "must be >= 0")
    _require(t.clip_norm >= 0, "training.clip_norm", "must be >= 0 (0 = no clipping)")
    _require(0 <= t.label_smoothing < 1, "training.label_smoothing", "must be in [0, 1)")
    _require(0 <= t.word_dropout < 1, "training.word_dropout", "must be in [0, 1)")
    _require(t.batch_tokens >= 1, "training.batch_tokens", "must be positive")
    _require(t.accumulate >= 1, "training.accumulate", "must be at least 1")
    _require(t.schedule in SCHEDULES, "training.schedule", f"must be {_one_of(SCHEDULES)}")
    _require(t.precision in PRECISIONS, "training.precision", f"must be {_one_of(PRECISIONS)}")
    _require(t.max_steps >= 1, "training.max_steps", "must be positive")
    _require(t.max_minutes >= 0, "training.max_minutes", "must be >= 0")
    _require(t.max_epochs >= 0, "training.max_epochs", "must be >= 0")
    _require(t.valid_every >= 1, "training.valid_every", "must be positive")
    _require(t.checkpoint_every >= 1, "training.checkpoint_every", "must be positive")
    _require(t.keep_checkpoints >= 1, "training.keep_checkpoints", "must be at least 1")
    _require(t.average_last >= 0, "training.average_last", "must be >= 0")
    _require(
        t.keep_checkpoints >= t.average_last,
        "training.average_last",
        f"is {t.average_last} but only training.keep_checkpoints={t.keep_checkpoints} are kept",
    )
    _require(t.log_every >= 1, "training.log_every", "must be positive")
    _require(t.max_nonfinite_steps >= 1, "training.max_nonfinite_steps", "must be positive")
    _require(t.threads >= 0, "training.threads", "must be >= 0")
    _require(
        t.early_stopping_metric in ("loss", "bleu"),
        "training.early_stopping_metric",
        "must be loss or bleu",
    )
    _require(t.early_stopping_patience >= 0, "training.early_stopping_patience", "must be >= 0")
    _require(
        t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"),
        "training.device",
        "must be auto, cpu, cuda or cuda:N",
    )
    _require(
        t.backend in BACKENDS,
        "training.backend",
        f"must be {_one_of(BACKENDS)}",
    )
    _require(dec.beam >= 1, "decoding.beam", "must be at least 1")
    _require(dec.length_penalty >= 0, "decoding.length_penalty", "must be >= 0")
    _require(dec.max_length_ratio > 0, "decoding.max_length_ratio", "must be positive")
    _require(dec.max_length >= 1, "decoding.max_length", "must be positive")
    _require(dec.batch_tokens >= 1, "decoding.batch_tokens", "must be positive")
    _require(dec.precision in PRECISIONS, "decoding.precision", f"must be {_one_of(PRECISIONS)}")


def _validate_vocab_models(v: VocabConfig) -> None:
    """``model`` (joint) or ``src_model`` + ``tgt_model`` (not joint), not with type none."""
    per_side = bool(v.src_model or v.tgt_model)
    if v.model or per_side:
        key = "data.vocab.model" if v.model else "data.vocab.src_model"
        _require(v.type != "none", key, "a SentencePiece model cannot go with type none")
    if v.model:
        _require(not per_side, "data.vocab.model", "give model or src_model/tgt_model, not both")
        _require(v.joint, "data.vocab.model", "one model for both sides needs joint: true")
    if per_side:
        _require(bool(v.src_model), "data.vocab.src_model", "needed with data.vocab.tgt_model")
        _require(bool(v.tgt_model), "data.vocab.tgt_model", "needed with data.vocab.src_model")
        _require(not v.joint, "data.vocab.joint", "must be false with src_model/tgt_model")


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def _one_of(names: tuple[str, ...]) -> str:
    """``a, b, c or d``."""
    return ", ".join(names[:-1]) + " or " + names[-1]
