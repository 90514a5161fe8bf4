"""Embedded serving: score sequences or raw OHLCV with an exported ONNX model.

:class:`PatternScorer` opens one onnxruntime session per model file and
keeps it. It checks the model's metadata against the engine when it loads
(the feature list and order must be the engine's) and every input before it
runs (rank, shape, dtype, missing values; :mod:`export.scoring_inputs`), so
a bad call fails with a message that says what to fix instead of an
onnxruntime stack trace.

:meth:`PatternScorer.score_bars` goes from raw bars to scores: it computes
the 17 features with the engine, exactly as training did (the model's price
basis, ``vix_term_structure`` variant, market and sector benchmarks are read
from its metadata and pinned), takes each ticker's last 20 feature rows and
scores them in one batch. Bars are the prices as stored: a model trained on
adjusted prices adjusts them here (``adj_close / close``), so pass
``adj_close`` for the tickers it adjusted.

Only the last 20 feature rows are computed (the tail mode,
:mod:`engine.features.tail`): the cost grows with the window lengths, not
with the history, and the rows equal those of a full-history computation
bit for bit. Feature values still depend on where the history starts:
rolling GARCH anchors its refit schedule at the first bar given, and
``price_level`` looks back 252 days. Scores from a short trailing history
(the minimum is :attr:`PatternScorer.min_history` bars) are therefore close
to, not equal to, scores computed from the full history the model was
trained on; pass the full history, it costs no more.

A model can also come from the registry: ``models:/NAME@ALIAS`` or
``models:/NAME/VERSION`` (:mod:`engine.tracking.registry`). The file is
fetched and its SHA-256 checked against the version's tag before
onnxruntime opens it.

This module imports neither TensorFlow nor tf2onnx, and MLflow only when a
``models:/`` reference is loaded.

Examples
--------
With an exported model (``engine export-onnx``; ``tests/test_scorer.py``
runs these calls on a trained one)::

    scorer = PatternScorer.load("model.onnx")
    scorer = PatternScorer.load("models:/pattern-lstm@champion")  # the registry
    scorer.score(sequences)  # (n, 20, 17) float32 -> (n, n_patterns)
    scorer.score_bars(bars)  # one row per ticker: ticker, date, <pattern>_p
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import polars as pl

from engine.data.prices import PriceBasis, apply_basis
from engine.data.universe import VOLATILITY_INDICES, sector_benchmark_map
from engine.features.build import FEATURE_NAMES
from engine.features.source import SortedBars, day_number
from engine.features.tail import TailArrays, tail_arrays
from engine.labels.targets import CONFIDENCE_SUFFIX
from engine.model.artifacts import ArtifactError, check_feature_order
from export.onnx_metadata import INPUT_NAME, OUTPUT_NAME, MetadataError, decode_metadata
from export.scoring_inputs import ScoringError, check_sequences, check_signature
from kernels.garch import GARCH_MIN_OBS

__all__ = [
    "CONFIDENCE_SUFFIX",
    "WARM_UP_ROWS",
    "PatternScorer",
    "ScoringError",
    "default_providers",
]

#: Rows before a ticker's first complete feature row. The longest warm-up is rolling
#: GARCH, whose first forecast needs GARCH_MIN_OBS returns (bars 1..252); the 252-day
#: price range and the 60-day windows are complete by then.
WARM_UP_ROWS = GARCH_MIN_OBS
_BAR_COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


_INCOMPLETE = (
    "incomplete latest window (a gap or null in the ticker's bars or a benchmark's, "
    "or a benchmark history too short): "
)


def _as_polars(bars: Any) -> pl.DataFrame:
    """``bars`` if it is a polars frame; anything else is refused with the conversion to use."""
    if isinstance(bars, pl.DataFrame):
        return bars
    if type(bars).__module__.split(".")[0] == "pandas":
        raise ScoringError(
            f"bars must be a polars DataFrame, got a pandas {type(bars).__name__}; convert it "
            "with pl.from_pandas(df) (df.reset_index() first if the dates are its index)"
        )
    raise ScoringError(
        f"bars must be a polars DataFrame, got {type(bars).__name__}; build one with "
        "pl.DataFrame(...) holding ticker, date, open, high, low, close, volume"
    )


def _window_keys(tail: TailArrays) -> pl.DataFrame:
    """``ticker`` and ``date`` of every row of the latest windows (for error messages)."""
    return pl.DataFrame(
        {
            "ticker": pl.Series(tail.tickers, dtype=pl.String).gather(
                np.repeat(np.arange(len(tail.lengths)), tail.lengths)
            ),
            "date": pl.Series(tail.days, dtype=pl.Int32).cast(pl.Date),
        }
    )


def default_providers() -> list[str]:
    """CUDA then CPU where onnxruntime-gpu is installed, else CPU only.

    With onnxruntime-gpu but no usable GPU, onnxruntime falls back to CPU;
    :attr:`PatternScorer.providers` says what the session really uses.
    """
    if _CUDA in ort.get_available_providers():
        return [_CUDA, _CPU]
    return [_CPU]


def _from_registry(uri: str, tracking_uri: str | None) -> tuple[str, bytes, dict[str, Any]]:
    """A registered version's bytes, checked against its SHA-256 tag (imports MLflow)."""
    from engine.tracking.registry import Registry, RegistryError
    from engine.tracking.settings import Tracking

    try:
        data, version = Registry(Tracking(uri=tracking_uri)).fetch_onnx(uri)
    except RegistryError as exc:
        raise ScoringError(str(exc)) from None
    return version.uri, data, version.to_dict()


class PatternScorer:
    """One onnxruntime session over an exported pattern model.

    Build it with :meth:`load`. The session is thread-safe for concurrent
    :meth:`score` calls (onnxruntime's ``InferenceSession.run`` is).

    Attributes
    ----------
    metadata : dict
        The model's decoded ONNX metadata (see :mod:`export.onnx_metadata`).
    source : str
        Where the model came from (its path, its ``models:/NAME/VERSION``
        URI, or ``"<bytes>"``).
    registered : dict or None
        The registry version it was loaded from (name, version, aliases,
        tags), or None for a file.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        source: str = "<bytes>",
        registered: dict[str, Any] | None = None,
    ) -> None:
        self._session = session
        self.source = source
        self.registered = registered
        try:
            self.metadata = decode_metadata(
                session.get_modelmeta().custom_metadata_map, source=source
            )
            check_feature_order(self.metadata, FEATURE_NAMES, source=source)
        except (MetadataError, ArtifactError) as exc:
            raise ScoringError(str(exc)) from None
        check_signature(
            self._session, self.source, self.sequence_length, self.feature_names,
            self.pattern_names,
        )  # fmt: skip

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str] | bytes,
        intra_op_threads: int | None = None,
        providers: Sequence[str] | None = None,
        *,
        tracking_uri: str | None = None,
        allow_spinning: bool | None = None,
    ) -> PatternScorer:
        """Open an exported model once.

        Parameters
        ----------
        model : path, ``models:/`` URI or bytes
            An ``.onnx`` file written by ``engine export-onnx`` (fp32 or int8),
            its bytes, or a registered version: ``models:/NAME@ALIAS`` (e.g.
            ``models:/pattern-lstm@champion``) or ``models:/NAME/VERSION``.
        intra_op_threads : int, optional
            Threads onnxruntime may use inside one call (default: its own
            choice, one per physical core). One thread is often fastest for
            small batches; measure (``bench/test_bench_serving.py``).
        providers : sequence of str, optional
            onnxruntime execution providers, in order of preference (default
            :func:`default_providers`).
        tracking_uri : str, optional
            The registry of a ``models:/`` reference (default
            ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<data-dir>/mlflow.db``
            of ``$ENGINE_DATA_DIR`` or the default data directory).
        allow_spinning : bool, optional
            Whether idle intra-op threads spin (onnxruntime's default, None,
            lets them). Turn it off when several sessions or processes share
            the cores, as ``engine serve`` does.

        Returns
        -------
        PatternScorer

        Raises
        ------
        FileNotFoundError
            No such file.
        ScoringError
            Not a pattern-engine export, a malformed file, a model whose
            features differ from the engine's; for a ``models:/`` reference,
            an unknown model, alias or version, or a file whose SHA-256
            differs from the registry's tag.
        """
        if intra_op_threads is not None and (
            isinstance(intra_op_threads, bool) or int(intra_op_threads) < 1
        ):
            raise ValueError(
                f"`intra_op_threads` must be at least 1, got `intra_op_threads={intra_op_threads}`"
            )
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = int(intra_op_threads)
        if allow_spinning is not None:
            spin = "1" if allow_spinning else "0"
            options.add_session_config_entry("session.intra_op.allow_spinning", spin)
            options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        registered = None
        if isinstance(model, bytes | bytearray):
            source, payload = "<bytes>", bytes(model)
        elif str(model).startswith("models:"):
            source, payload, registered = _from_registry(str(model), tracking_uri)
        else:
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"ONNX model {path} does not exist")
            source, payload = str(path), str(path)
        try:
            session = ort.InferenceSession(
                payload, sess_options=options, providers=list(providers or default_providers())
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ScoringError(f"{source}: onnxruntime cannot open the model: {exc}") from None
        return cls(session, source=source, registered=registered)

    # ------------------------------------------------------------ description

    @property
    def model_id(self) -> str:
        """The training artifact's model id."""
        return str(self.metadata["model_id"])

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Input features, in input order (always the engine's ``FEATURE_NAMES``)."""
        return tuple(self.metadata["feature_names"])

    @property
    def pattern_names(self) -> tuple[str, ...]:
        """Pattern heads, in output order."""
        return tuple(self.metadata["pattern_names"])

    @property
    def sequence_length(self) -> int:
        """Rows per input window."""
        return int(self.metadata["sequence_length"])

    @property
    def vix_variant(self) -> str:
        """How ``vix_term_structure`` was computed in training (and is computed here)."""
        return self.metadata["vix_variant"] or "auto"

    @property
    def market(self) -> str:
        """Market benchmark ticker used in training."""
        return str(self.metadata["market"])

    @property
    def sector_map(self) -> dict[str, str]:
        """Ticker -> sector benchmark used in training (other tickers get the default rule)."""
        return dict(self.metadata["sector_map"] or {})

    @property
    def prices(self) -> PriceBasis:
        """The price basis of training (raw for files exported before price bases)."""
        return PriceBasis.from_dict(self.metadata.get("prices"))

    @property
    def min_history(self) -> int:
        """Bars per ticker that :meth:`score_bars` needs: the warm-up plus one window."""
        return WARM_UP_ROWS + self.sequence_length

    @property
    def intra_op_threads(self) -> int | None:
        """Intra-op threads the session was opened with (None: onnxruntime's default)."""
        return self._session.get_session_options().intra_op_num_threads or None

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses."""
        return list(self._session.get_providers())

    @property
    def device(self) -> str:
        """``"cuda"`` when the session runs on the CUDA provider, else ``"cpu"``."""
        return "cuda" if _CUDA in self.providers else "cpu"

    def __repr__(self) -> str:
        return (
            f"PatternScorer(model_id={self.model_id!r}, source={self.source!r}, "
            f"quantization={self.metadata.get('quantization', 'none')!r}, device={self.device!r})"
        )

    # ------------------------------------------------------------ scoring

    def score(self, sequences: np.ndarray) -> np.ndarray:
        """Confidences for ready feature windows.

        Parameters
        ----------
        sequences : ndarray, shape (batch, 20, 17), float32
            Raw (unnormalized) features in :attr:`feature_names` order, oldest
            row first; normalization is inside the model.

        Returns
        -------
        ndarray, shape (batch, n_patterns), float32
            One sigmoid confidence per pattern head.

        Raises
        ------
        ScoringError
            Not a numpy array, not float32, wrong rank or shape, or a NaN or
            infinite value (the message locates the first one).
        """
        x = check_sequences(sequences, self.sequence_length, self.feature_names)
        if x.shape[0] == 0:
            return np.empty((0, len(self.pattern_names)), dtype=np.float32)
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]

    def sequences_from_bars(
        self,
        bars: pl.DataFrame,
        tickers: Sequence[str] | None = None,
        sector_map: Mapping[str, str] | None = None,
    ) -> tuple[np.ndarray, pl.DataFrame]:
        """Each ticker's latest feature window, computed from raw bars as in training.

        Parameters
        ----------
        bars : pl.DataFrame
            ``ticker, date, open, high, low, close, volume`` for the tickers to
            score *and* their benchmarks (the model's market, sector
            benchmarks and, for the ``vix_*`` variants, VIX).
        tickers : sequence of str, optional
            Tickers to score (default: every ticker in ``bars`` except the
            volatility indices).
        sector_map : mapping of str to str, optional
            Sector ETFs of tickers the model's map lacks (``--sector-map``);
            a ticker the model maps already must keep its sector.

        Returns
        -------
        X : ndarray, shape (n_tickers, 20, 17), float32
        index : pl.DataFrame
            ``ticker`` and ``date`` (the window's last day), sorted by ticker.

        Raises
        ------
        ScoringError
            Not a polars frame (for a pandas one the message gives the
            conversion), missing columns, a ticker not in ``bars``, a
            ticker with fewer than :attr:`min_history` bars, a missing
            benchmark, bars without the ``adj_close`` the model was trained
            with, a sector that contradicts the model's, or a missing
            feature value in a ticker's last window (a gap in its bars or a
            benchmark's).
        """
        bars = _as_polars(bars)
        missing = [c for c in _BAR_COLUMNS if c not in bars.columns]
        if missing:
            raise ScoringError(f"bars lack required column(s): {', '.join(missing)}")
        counts = dict(bars.group_by("ticker").len().iter_rows())
        wanted = self._wanted(tickers, counts)
        short = {t: counts[t] for t in wanted if counts[t] < self.min_history}
        if short:
            raise ScoringError(self._too_short(short, None))
        sectors = self._sectors(wanted, sector_map)
        try:
            bars = apply_basis(bars, self.prices, [*wanted, self.market, *sectors.values()])
            source = SortedBars.of(bars)
        except ValueError as exc:
            raise ScoringError(f"cannot compute the model's features: {exc}") from None
        return self.latest_windows(source, wanted, sector_map=sector_map)

    def latest_windows(
        self,
        source: SortedBars,
        tickers: Sequence[str],
        *,
        as_of: date | None = None,
        sector_map: Mapping[str, str] | None = None,
    ) -> tuple[np.ndarray, pl.DataFrame]:
        """:meth:`sequences_from_bars` over bars already sorted and on the model's price basis.

        This is what a server holding the store in memory calls per request
        (``engine serve``); the work is the tail mode's, independent of the
        history's length.

        Parameters
        ----------
        source : engine.features.source.SortedBars
            Every ticker's full history, benchmarks included, on the model's
            price basis (:func:`engine.data.prices.apply_basis`).
        tickers : sequence of str
            Tickers to score (each must be in ``source``).
        as_of : datetime.date, optional
            Use bars dated on or before this day only (default: all).
        sector_map : mapping of str to str, optional
            As for :meth:`sequences_from_bars`.

        Returns
        -------
        X, index
            As :meth:`sequences_from_bars`.

        Raises
        ------
        ScoringError
            A ticker not in ``source``, one with fewer than
            :attr:`min_history` bars on or before ``as_of``, a missing
            benchmark, or a missing value in a latest window.
        """
        X, index, _ = self._latest(source, tickers, as_of, sector_map, skip=False)
        return X, index

    def scorable_windows(
        self,
        source: SortedBars,
        tickers: Sequence[str],
        *,
        as_of: date | None = None,
        sector_map: Mapping[str, str] | None = None,
    ) -> tuple[np.ndarray, pl.DataFrame, dict[str, str]]:
        """:meth:`latest_windows` that sets aside the tickers it cannot score.

        A ticker with too short a history on or before ``as_of`` (decided
        from its row count before any feature is computed) or an incomplete
        latest window (a gap in its bars or a benchmark's) is left out and
        reported with the message :meth:`latest_windows` would raise for it
        alone; the others are scored as usual. Errors that concern every
        ticker (an unknown ticker, a missing benchmark) still raise.

        Returns
        -------
        X, index
            As :meth:`latest_windows`, for the scorable tickers only.
        skipped : dict of str to str
            Ticker -> why it was left out, sorted by ticker.
        """
        return self._latest(source, tickers, as_of, sector_map, skip=True)

    def _latest(
        self,
        source: SortedBars,
        tickers: Sequence[str],
        as_of: date | None,
        sector_map: Mapping[str, str] | None,
        *,
        skip: bool,
    ) -> tuple[np.ndarray, pl.DataFrame, dict[str, str]]:
        """The latest windows; with ``skip`` unscorable tickers are reported, not raised."""
        wanted = self._wanted(tickers, {t: source.length(t) for t in source.tickers})
        day = None if as_of is None else day_number(as_of)
        counts = {t: source.stop_at(t, day) for t in wanted}
        short = {t: n for t, n in counts.items() if n < self.min_history}
        skipped: dict[str, str] = {}
        if short and not skip:
            raise ScoringError(self._too_short(short, as_of))
        for ticker, n in short.items():
            skipped[ticker] = self._too_short({ticker: n}, as_of)
        wanted = [t for t in wanted if t not in short]
        length = self.sequence_length
        if not wanted:
            empty = pl.DataFrame(schema={"ticker": pl.String, "date": pl.Date})
            return np.empty((0, length, len(FEATURE_NAMES)), dtype=np.float32), empty, skipped
        try:
            tail = tail_arrays(
                source,
                length,
                tickers=wanted,
                market=self.market,
                sector_map=self._sectors(wanted, sector_map),
                vix_variant=self.vix_variant,
                as_of=as_of,
            )
        except ValueError as exc:
            raise ScoringError(f"cannot compute the model's features: {exc}") from None
        values = np.ascontiguousarray(
            tail.values.T.reshape(len(wanted), length, len(FEATURE_NAMES)), dtype=np.float32
        )
        ends = np.cumsum(tail.lengths) - 1
        index = pl.DataFrame(
            {
                "ticker": pl.Series(tail.tickers, dtype=pl.String),
                "date": pl.Series(tail.days[ends], dtype=pl.Int32).cast(pl.Date),
            }
        )
        if np.isfinite(values).all():
            return values, index, dict(sorted(skipped.items()))
        problems = self._incomplete(values, _window_keys(tail), index)
        if not skip:
            raise ScoringError(_INCOMPLETE + "; ".join(problems.values()))
        skipped.update({t: _INCOMPLETE + problem for t, problem in problems.items()})
        keep = ~index.get_column("ticker").is_in(list(problems)).to_numpy()
        return values[keep], index.filter(pl.Series(keep)), dict(sorted(skipped.items()))

    def _too_short(self, short: Mapping[str, int], as_of: date | None) -> str:
        """The message for tickers with fewer than :attr:`min_history` bars."""
        listed = ", ".join(f"{t} has {n}" for t, n in sorted(short.items()))
        when = f" on or before {as_of}" if as_of else ""
        return (
            f"too short a history: {listed} bar(s){when}; the model needs at least "
            f"{self.min_history} bars per ticker ({WARM_UP_ROWS} warm-up rows for the "
            f"features, rolling GARCH the longest, plus one {self.sequence_length}-row window)"
        )

    def score_bars(
        self,
        bars: pl.DataFrame,
        tickers: Sequence[str] | None = None,
        sector_map: Mapping[str, str] | None = None,
    ) -> pl.DataFrame:
        """Latest confidence per ticker and pattern, from raw OHLCV bars.

        Parameters
        ----------
        bars, tickers, sector_map
            See :meth:`sequences_from_bars`.

        Returns
        -------
        pl.DataFrame
            One row per ticker, sorted: ``ticker``, ``date`` (the last bar's
            date) and ``<pattern>_p`` per pattern head.

        Raises
        ------
        ScoringError
            See :meth:`sequences_from_bars`.
        """
        X, index = self.sequences_from_bars(bars, tickers, sector_map)
        scores = self.score(X)
        return index.with_columns(
            pl.Series(name + CONFIDENCE_SUFFIX, scores[:, j])
            for j, name in enumerate(self.pattern_names)
        )

    # ------------------------------------------------------------ checks

    def _sectors(self, wanted: list[str], extra: Mapping[str, str] | None) -> dict[str, str]:
        """The model's sector map, extended by ``extra`` for tickers it does not map."""
        pinned = self.sector_map
        extra = {str(t).upper(): str(e).upper() for t, e in (extra or {}).items()}
        clash = {t: (pinned[t], e) for t, e in extra.items() if t in pinned and pinned[t] != e}
        if clash:
            listed = ", ".join(f"{t}: {m} in the model, {e} given" for t, (m, e) in clash.items())
            raise ScoringError(
                f"--sector-map contradicts the sector map the model was trained with ({listed}); "
                "a trained ticker keeps its sector"
            )
        return sector_benchmark_map(wanted, pinned | extra, market=self.market)

    def _wanted(self, tickers: Sequence[str] | None, counts: dict[str, int]) -> list[str]:
        if tickers is None:
            wanted = sorted(t for t in counts if t not in VOLATILITY_INDICES)
            if not wanted:
                raise ScoringError("bars hold no securities to score")
            return wanted
        if isinstance(tickers, str):
            tickers = [tickers]
        unknown = sorted(set(tickers) - set(counts))
        if unknown:
            raise ScoringError(
                f"ticker(s) not in bars: {', '.join(unknown)} "
                f"(bars hold {', '.join(sorted(counts)) or 'nothing'})"
            )
        if not tickers:
            raise ScoringError("tickers is empty: name at least one or pass None for all")
        return sorted(set(tickers))

    def _incomplete(
        self, values: np.ndarray, last: pl.DataFrame, index: pl.DataFrame
    ) -> dict[str, str]:
        """Ticker -> the features missing from its latest window, and from which date."""
        bad = ~np.isfinite(values)
        dates = last.get_column("date").to_numpy().reshape(values.shape[:2])
        problems = {}
        for i in np.flatnonzero(bad.any(axis=(1, 2))):
            rows, cols = np.nonzero(bad[i])
            names = sorted({self.feature_names[c] for c in cols})
            ticker = index["ticker"][int(i)]
            problems[ticker] = (
                f"{ticker}: {', '.join(names)} missing from "
                f"{dates[i, rows.min()]} in the last {self.sequence_length} rows"
            )
        return problems
