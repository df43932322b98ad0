"""Richardson-Lucy deconvolution: non-circulant edges, acceleration, regularisation, resume.

The estimate ``x`` is updated multiplicatively,

    x <- x / w * H^T( g / (H x + b) )

with ``H`` the blur (convolution with the PSF, normalised to sum 1), ``H^T`` its
adjoint (correlation), ``g`` the data, ``b`` a constant background and ``w = H^T 1``
over the data box (1 everywhere for periodic/reflect edges).  It is the
maximum-likelihood (EM) iteration for Poisson data; it keeps the estimate
non-negative, and with ``b = 0`` every iterate has ``sum(H x)`` over the data box equal
to ``sum(g)`` (flux is preserved).

Edges (``edges=``, see :mod:`fijidecon.deconvolve._edges`)
    ``"non-circulant"`` (default; Bertero & Boccacci 2005) estimates the object on an
    extended grid ``image + psf_support - 1`` while data exist only in the image box:
    no wrap-around, no ringing at borders, objects cut by the border are restored.
    ``"periodic"`` is the classical circulant form (fastest).  ``"reflect"`` mirrors.

Acceleration (``acceleration=``)
    All extrapolate ``y = max(x_k + a (x_k - x_{k-1}), floor)`` (plus a second-order term
    for ``"biggs-andrews-2"``) and apply the RL step to ``y``; they differ in the factor ``a``.
    ``"biggs-andrews"``: vector extrapolation of Biggs & Andrews (1997),
    ``a = <g_k, g_{k-1}> / <g_{k-1}, g_{k-1}>`` clipped to [0, 0.95], where ``g`` is
    the change produced by the last RL step (``floor = 0``).  Typically 3-10x fewer
    iterations for the same error (see ``benchmarks/quality.py``) - and as many fewer
    before RL starts to fit noise, so use fewer iterations or snapshots.
    ``"momentum"``: scaled heavy-ball momentum (Wang & Miller 2014; deconwolf's default
    ``shb``): ``a = k / (k + 3)`` (at most 0.95) after ``k`` iterations, ``floor = 1e-4 x``
    the data's mean level (a voxel at 0 would stay 0).  No restart, as in deconwolf: the
    gradient restart rule (O'Donoghue & Candes 2015) was measured to cost iterations
    (beads of ``benchmarks/quality.py``: 61 iterations to plain RL's best with it, 55
    without; Hollow Bars 54 and 48; with TV it restarted 48 times in 100 iterations on
    RedLionfish's volume, so TV ran nearly unaccelerated) and never to help; without
    it the factors are the same in every brick of a bricked run.  The factor does not
    depend on the noise-driven inner products of Biggs-Andrews, so it keeps improving
    for longer before fitting noise (bars of ``benchmarks/quality.py``: best 0.141 at 36
    iterations, where Biggs-Andrews is best at 29 with 0.135 and at 0.190 by 50).
    ``"biggs-andrews-2"``: Biggs & Andrews' second-order extrapolation (their section 2.6:
    the next term of the Taylor series, from the last two steps ``h_k = x_k - x_{k-1}``):
    ``y = max(x_k + a h_k + a^2/2 (h_k - h_{k-1}), floor)`` (momentum's floor), with a bolder factor
    ``a = a_BA ** (1/4)`` (``a_BA``: Biggs-Andrews' factor above; 0.5 -> 0.84, 0 stays 0,
    so it still stops extrapolating when successive steps disagree).  The power is
    empirical, not from the paper: Biggs-Andrews' factor is estimated from steps that
    carry noise, which lowers it; measured on ``benchmarks/quality.py``, powers
    0.15-0.5 all beat 1, 0.15 slightly more than 0.5.  The fastest and best variant
    there (every phantom, see the README), and the one that over-fits soonest after its
    best: use ``stop="auto"`` or snapshots.  One more work-grid volume (float32) than
    the others.

Exponent (``exponent=``)
    Meinel (1986): the correction raised to a power, ``x <- s * y * c^q`` with ``c`` the RL
    correction ``H^T(g / (Hy + b)) / w`` (clipped at 0), ``y`` the (extrapolated) estimate,
    ``q`` in [1, 3] and ``s = sum(y c) / sum(y c^q)``: the raised update at the plain update's
    flux (without ``s`` the flux swings and diverges from a flat start on sparse real data:
    RedLionfish's phantom x5, x0.1, x33, x2700).  ``q = 1`` is RL.  A longer step in the same
    multiplicative direction: RL needs many iterations to gather the light of small objects.
    Measured with ``"biggs-andrews-2"`` (``benchmarks/quality.py``): ``q = 2.5`` reaches plain
    RL's best in 22 iterations on beads, 19 on lines and 18 on bars (36, 30 and 19 without it),
    with about the same best NMSE; near-edge cubes 9 (9), Hollow Bars 36 (34).  On
    RedLionfish's phantom with its measured PSF: NMSE 0.166 at 20 iterations against 0.191.
    Guards: ``q = 1`` for good from the first iteration whose Poisson deviance (computed every
    iteration while ``q > 1``, a logarithm per voxel) is more than 1 % (``EXPONENT_GUARD``) above
    the previous one's, or, with Biggs-Andrews, after ``EXPONENT_ZIGZAG`` successive iterations
    whose steps were anti-correlated (the extrapolation factor is then 0: the exponent
    overshoots).  ``IterationFigures.exponent`` records it; a bricked run uses the central
    brick's exponents (and warns: the result depends on the layout, RedLionfish 8 bricks 23 %
    rel L2 from the whole volume); resume keeps the state; ``stop="auto"``'s final run drops it
    where the guards of its thinned run did, its own guards off.  They catch overshoot, not
    over-sharpening as such.  Not maximum likelihood while ``q > 1``.  Cost: one more pass
    over the correction (kept in the spectrum's buffer), the guard's logarithm and, for
    ``q = 2.5``, a square root and two multiplications per voxel (whole and half exponents up
    to 4 use multiplications and a square root; others ``np.power``).

Back projectors (``back_projector=``, ``bp_alpha=``, ``bp_beta=``, ``bp_order=``)
    ``None``/``"matched"``: ``H^T``, the maximum-likelihood (EM) iteration above.
    An unmatched back projector ``B`` replaces ``H^T`` (Guo et al. 2020):
    ``x <- x * B( g / (H x + b) )``, see :mod:`fijidecon.deconvolve._backproject`.
    ``"wiener-butterworth"``: ``B = Wiener(alpha) x Butterworth(beta, order)`` with the
    Butterworth cutoff ``1 / FWHM`` of the PSF along each axis (defaults alpha 1e-3,
    beta 1e-3, order 10, the paper's).  ``"otf-masked-wiener"`` (PetaKit5D, Ruan et al.
    2024): ``B = Wiener(alpha) x`` an apodised mask of the OTF support (alpha 5e-3).
    An array: a user kernel applied by convolution (the flipped PSF gives plain RL with
    every edge mode: a non-negative kernel is normalised by ``B^T 1`` on the data box).
    What it trades: it is **not** the maximum-likelihood iteration (it converges to no
    likelihood maximum; ``sum(Hx) = sum(g)`` no longer holds exactly); positivity is kept
    by clipping ``B(ratio)`` at 0; most of the gain comes in 1-5 iterations of the same
    cost (plus 4 bytes per work voxel for ``B``'s spectrum), and over-iterating amplifies
    noise fast, so use 2-5 iterations.  On the Gaussian-PSF phantoms of
    ``benchmarks/quality.py`` (bars: NMSE 0.233 at 2 iterations with the OTF-masked
    Wiener, where plain RL needs ~35) they approach but do not reach plain RL's best; the
    paper's beta = 1e-3 cuts a Gaussian OTF early (bars: 0.46 at 5), beta ~0.2 is faster
    (0.171 at 10).  With non-circulant edges ``w = B^T 1`` rings (negative outside the
    data box, 0.3-1.5 inside it) and dividing by it diverges, so the ratio is taken as 1
    outside the data box instead (then ``B^T 1 = 1``) and the update is
    ``x <- x * (1 + B(ratio - 1))`` in the data box, ``x <- x * (1 + w^2 B(ratio - 1))``
    outside it with ``w = H^T 1`` (the voxels there are only partly observed; undamped they
    grow without bound after ~50 iterations); the unobserved voxels (``w < W_MIN``) are
    kept at 0.  Objects cut by the border are restored less than by plain RL.  The
    flipped PSF as ``B`` equals plain RL away from the border only (exactly, to float32
    round-off, with periodic or mirror edges).

Regularisation (``regularization=``, ``weight=``)
    ``"tv"``: total variation, Dey et al. (2006): the update is divided by
    ``w - weight * div(grad x / |grad x|)``; ``weight`` ~ 0.001-0.01 (default 0.002);
    the gradient uses ``voxel_size`` (normalised to the smallest spacing) so
    anisotropic voxels are treated correctly.
    ``"tikhonov"``: intensity (energy) penalty of Conchello & McNally (1996):
    ``x <- (sqrt(1 + 2 a x') - 1) / a`` with ``x'`` the plain update and
    ``a = weight / mean(data)`` (dimensionless ``weight``, default 0.01).

Noise model
    ``background`` is added to the blurred estimate (camera offset already removed,
    constant background in the same units as the data).  ``read_noise`` (Gaussian
    read noise, standard deviation in photo-electrons) uses the shifted-Poisson
    approximation of Snyder et al. (1993): ``read_noise**2`` is added to both data
    and model, which also makes negative values legal (data + read_noise**2 is
    clipped at 0).

Stopping (``stop=``)
    ``None``: run ``iterations`` iterations (Imspector's practice: save snapshots every
    N iterations and choose; ``snapshot_every=``).
    ``"discrepancy"``: the discrepancy principle for Poisson data (Bertero et al. 2010):
    stop at the first iteration whose starting estimate has
    ``D = (2 / N) * sum(g log(g / m) - g + m) <= 1 + mean(1 / (6 m))`` with
    ``m = Hx + b``.  For Poisson data the expected ``D`` at the true object is that
    value (about 1 plus a low-count correction), so iterating beyond it fits noise.
    Trustworthy **only** if the data are in photo-electrons (offset subtracted,
    divided by the gain) and the background is modelled; otherwise use snapshots.
    a float ``tol``: stop when the relative change ``||x_k - x_{k-1}|| / ||x_{k-1}||``
    drops below ``tol``.  This says the iteration has slowed down, not that the result
    is optimal (RL slows down long before it stops fitting noise).
    a callable ``stop(figures) -> bool`` receiving the :class:`IterationFigures`.
    ``"auto"``: the count is chosen from the data alone before the run, by binomial
    thinning cross-validation of the Poisson likelihood (:mod:`._autostop`; ``gain=`` and
    ``offset=`` convert the data to photo-electrons, estimated when not given); then the
    full data are deconvolved to that count; ``result.auto_stop`` holds the choice and its
    curve.
    ``iterations`` is always the upper bound.

References
----------
W. H. Richardson, JOSA 62, 55 (1972); L. B. Lucy, AJ 79, 745 (1974).
M. Bertero, P. Boccacci, A&A 437, 369 (2005) (non-circulant edges).
D. S. C. Biggs, M. Andrews, Appl. Opt. 36, 1766 (1997) (acceleration).
E. S. Meinel, JOSA A 3, 787 (1986) (the exponent on the correction).
H. Wang, P. C. Miller, IEEE Trans. Image Process. 23, 848 (2014) (scaled heavy-ball momentum);
E. Wernersson et al., Nat. Methods 21, 1245 (2024) (deconwolf).
B. O'Donoghue, E. Candes, Found. Comput. Math. 15, 715 (2015) (adaptive restart: measured, not used).
M. Guo et al., Nat. Biotechnol. 38, 1337 (2020) (Wiener-Butterworth back projector).
X. Ruan et al., Nat. Methods 21, 2342 (2024) (PetaKit5D, OTF-masked Wiener).
N. Dey et al., Microsc. Res. Tech. 69, 260 (2006) (RL with TV).
J.-A. Conchello, J. G. McNally, Proc. SPIE 2655, 199 (1996) (intensity regularisation).
D. L. Snyder, A. M. Hammoud, R. L. White, JOSA A 10, 1014 (1993) (read noise).
M. Bertero, P. Boccacci, G. Talenti, R. Zanella, L. Zanni, Inverse Problems 26,
105004 (2010) (discrepancy principle for Poisson data).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import _validate
from . import _autostop, _background, _backproject, _bricks, _edges, _fft, _hyper, _otf, _par
from ..errors import InputError, InputTypeError

ACCELERATIONS = (None, "biggs-andrews", "momentum", "biggs-andrews-2")
#: Accelerations whose factors do not depend on the data (a bricked run needs no central brick's).
MOMENTUM_OR_NONE = (None, "momentum")
#: Biggs-Andrews extrapolation (first and second order).
BIGGS_ANDREWS = ("biggs-andrews", "biggs-andrews-2")
#: Work-grid volumes (float32) each acceleration keeps from one iteration to the next: x, and
#: x_{k-1} and g_{k-1} when accelerated, and x_{k-1} - x_{k-2} for the second order.
STATE_VOLUMES = {None: 1, "biggs-andrews": 3, "momentum": 3, "biggs-andrews-2": 4}
#: What the entries of a run's resume key are (``_RL.key``), for the refusal's message.
KEY_FIELDS = ("work grid", "edges", "acceleration", "regularization", "weight", "background", "exponent",
              "back projector")
REGULARIZATIONS = (None, "tv", "tikhonov")
#: First estimates (``initial=``): the data's mean level, the data less the background, or its Wiener estimate.
INITIALS = ("flat", "image", "wiener")
#: ``initial="wiener"``: the Wiener (Tikhonov) constant ``rho`` relative to ``|H(0)|^2 = 1``
#: (``benchmarks/quality.py``: 1e-3 and 1e-1 reach plain RL's best within 1-4 iterations of 1e-2).
WIENER_START_RHO = 1e-2
#: ``initial="image"``: voxels below this fraction of the data's mean level start there (a 0 would stay 0).
INITIAL_FLOOR = 1e-3
DEFAULT_WEIGHT = {"tv": 0.002, "tikhonov": 0.01}
#: Upper bound of the Biggs-Andrews and momentum extrapolation factors.
ALPHA_MAX = 0.95
#: ``"biggs-andrews-2"``: its factor is Biggs-Andrews' raised to this power (bolder: 0.5 -> 0.84).
BA2_POWER = 0.25
#: Momentum: the extrapolated point is floored at this fraction of the data's mean level
#: (deconwolf's positivity floor: a voxel that reaches 0 would stay 0 in a multiplicative update).
MOMENTUM_FLOOR = 1e-4
#: ``exponent=``: the largest exponent of the correction accepted.
EXPONENT_MAX = 3.0
#: ``exponent=``'s guard: the exponent drops to 1 when the deviance rises by more than this fraction.
EXPONENT_GUARD = 0.01
#: ``exponent=`` with Biggs-Andrews: the exponent drops to 1 after this many successive iterations
#: whose steps were anti-correlated (``<g_k, g_k-1> < 0``: it overshoots and the extrapolation is off).
EXPONENT_ZIGZAG = 2
#: Voxels of the extended grid with ``w = H^T 1 <`` this are not observed and kept at 0.
W_MIN = 1e-3
#: Unmatched back projector, non-circulant edges: the update is ``1 + w^p B(ratio - 1)`` outside
#: the data box, ``w = H^T 1``: partly observed voxels are corrected less (undamped, they diverge).
NEUTRAL_POWER = 2.0


@dataclass(frozen=True)
class IterationFigures:
    """Figures recorded for one iteration.

    Attributes
    ----------
    iteration:
        Iteration number (counting from the very first run when resumed).
    relative_change:
        ``||x_k - x_{k-1}|| / ||x_{k-1}||`` over the work grid.
    deviance:
        Poisson deviance per data voxel of the estimate the iteration started from,
        ``(2/N) sum(g log(g/m) - g + m)`` with ``m = Hx + b`` (about 1 for a perfect
        fit of Poisson data in photo-electrons).
    flux:
        Sum of the estimate over the whole work grid after the iteration.
    acceleration:
        Extrapolation factor used (0 without acceleration).
    seconds:
        Wall time of the iteration.
    deviance_expected:
        The deviance expected if the model were the truth, ``1 + mean(1 / (6 m))``
        (the low-count correction of the chi-square approximation); the
        ``"discrepancy"`` rule stops when ``deviance <= deviance_expected``.
    exponent:
        The exponent the correction was raised to (``exponent=``; 1 once its guard has
        dropped it, and always 1 by default).
    """

    iteration: int
    relative_change: float
    deviance: float
    flux: float
    acceleration: float
    seconds: float
    deviance_expected: float = float("nan")
    exponent: float = 1.0


@dataclass
class RichardsonLucyResult:
    """Result of :func:`richardson_lucy`.

    Attributes
    ----------
    image:
        float32 estimate, the input's shape.
    iterations:
        Total number of iterations done (including those of a resumed ``start``).
    snapshots:
        ``{iteration: estimate}`` every ``snapshot_every`` iterations.
    history:
        One :class:`IterationFigures` per iteration (per channel: a list of lists).
    stop_reason:
        ``"iterations"`` (all of them ran), ``"stop"`` (the stopping rule, ``stop=`` a
        tolerance, ``"discrepancy"`` or a callable), ``"auto"`` (``stop="auto"`` chose the
        count: ``auto_stop``) or ``"callback"`` (the callback returned ``True``).
    edges, acceleration, regularization, weight, back_projector:
        The settings used (``back_projector``: its kind, ``"array"`` for a user kernel).
    psf_shift:
        Shift applied to re-centre the PSF (voxels; zeros when it was used as given;
        per channel for hyperstacks).
    notes:
        One line per change made to the PSF (offset removed, resampled, re-centred,
        cropped); also logged on the ``fijidecon`` logger.
    psf_report:
        The PSF preparation as JSON-able values (one dict, or one per channel).
    auto_stop:
        With ``stop="auto"``: the chosen ``iteration``, the held-out ``curve``
        (``[[k, L(k)], ...]``), the ``method`` and the camera model (see
        :func:`fijidecon.deconvolve._autostop.choose_iterations`); else ``None``.
    background:
        The background used, in the image's units: a float, or one per (T, C) volume
        (``t * C + c`` order) when they differ (per channel, or ``background="auto"``).
    """

    image: np.ndarray
    iterations: int
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    history: list = field(default_factory=list)
    stop_reason: str = "iterations"
    edges: str = "non-circulant"
    acceleration: str | None = None
    regularization: str | None = None
    weight: float = 0.0
    back_projector: str = "matched"
    psf_shift: Any = None
    notes: list = field(default_factory=list)
    psf_report: Any = None
    auto_stop: dict | None = None
    background: Any = None
    _state: Any = field(default=None, repr=False)

    def figures(self, name: str) -> np.ndarray:
        """One figure over the iterations as an array, e.g. ``result.figures("deviance")``."""
        hist = self.history
        if hist and isinstance(hist[0], list):
            return np.array([[getattr(f, name) for f in h] for h in hist])
        return np.array([getattr(f, name) for f in hist])

    def drop_state(self) -> None:
        """Free the work-grid buffers kept for resuming (``start=result``)."""
        self._state = None

    def __array__(self, dtype=None, copy=None):
        return self.image if dtype is None else self.image.astype(dtype)


def richardson_lucy(image: object, psf: object, iterations: int = 30, *,
                    regularization: str | None = None, weight: float | None = None,
                    acceleration: str | None = "momentum", edges: str = "non-circulant",
                    start: "RichardsonLucyResult | np.ndarray | None" = None,
                    snapshot_every: int | None = None,
                    callback: Callable[[IterationFigures, np.ndarray], Any] | None = None,
                    stop: "None | float | str | Callable[[IterationFigures], bool]" = None,
                    background: "float | Sequence[float] | str" = 0.0, read_noise: float = 0.0,
                    voxel_size: Sequence[float] | None = None,
                    track_deviance: bool | None = None, recenter: bool = True,
                    psf_threshold: float = 1e-4, axes: str | None = None,
                    psf_voxel_size: Sequence[float] | None = None, memory_limit: Any = None,
                    bricks: Sequence[int] | None = None, halo: Any = None,
                    back_projector: "str | np.ndarray | None" = None, bp_alpha: float | None = None,
                    bp_beta: float = _backproject.DEFAULT_BETA,
                    bp_order: int = _backproject.DEFAULT_ORDER, gain: float | None = None,
                    offset: float | None = None, initial: str = "flat", exponent: float = 1.0) -> RichardsonLucyResult:
    """Richardson-Lucy deconvolution (see the module docstring for the model).

    Parameters
    ----------
    image:
        2D (Y, X), 3D (Z, Y, X), or a hyperstack whose ``axes`` say which axes are T and
        C (default 4D ``CZYX``, 5D ``TCZYX``), or an ``xarray.DataArray`` with named
        dims, or a ``dask.array.Array`` (then ``result.image`` is a lazy Dask array: one
        task per brick and per (T, C) volume, computed on any Dask scheduler);
        non-negative (see ``read_noise``).  Any real dtype; computed in float32.  Not
        modified.  Every (T, C) volume is deconvolved on its own.
    psf:
        The PSF of the volume's dimensionality, any size and parity, origin at
        ``n // 2``: one for every channel, a stack with a leading channel axis, or a
        list.  It is cleaned of a camera offset, resampled when ``psf_voxel_size``
        differs from ``voxel_size``, re-centred only when it is off by more than half a
        voxel (``recenter``), cropped to its support (``psf_threshold``) and to
        ``2 n - 1`` voxels (``n`` for periodic edges), and normalised to sum 1; see
        :func:`fijidecon.deconvolve._otf.prepare_psf` and ``result.notes``.
    iterations:
        Number of iterations (the maximum if ``stop`` is given); 0 returns the start.
    regularization:
        ``None``, ``"tv"`` or ``"tikhonov"``.
    weight:
        Regularisation weight (defaults: tv 0.002, tikhonov 0.01).
    acceleration:
        ``"momentum"`` (default: keeps improving longest before it fits noise),
        ``"biggs-andrews"``, ``"biggs-andrews-2"`` (second order: fewest iterations and the best
        NMSE of ``benchmarks/quality.py``, then over-fits soonest), or ``None`` (the textbook EM
        iteration; see the module docstring).
    back_projector:
        ``None`` or ``"matched"`` (plain RL), ``"wiener-butterworth"``,
        ``"otf-masked-wiener"``, or a 2D/3D array (the PSF's dimensionality, origin at
        ``n // 2``, normalised to sum 1, at most the work grid's size) applied by
        convolution.  Not maximum likelihood; use 1-5 iterations (module docstring).
        Costs 4 bytes per work voxel.
    bp_alpha:
        Wiener parameter of the back projector (> 0); ``None``: 1e-3 for
        Wiener-Butterworth, 5e-3 for the OTF-masked Wiener.  Larger is smoother.
    bp_beta:
        Wiener-Butterworth: gain at the cutoff, in (0, 1) (default 1e-3, the paper's);
        larger passes more high frequencies (sharper, noisier).
    bp_order:
        Wiener-Butterworth: order ``n`` of the Butterworth filter (>= 1, default 10).
    edges:
        ``"non-circulant"`` (default), ``"periodic"`` or ``"reflect"``.
    initial:
        The first estimate: ``"flat"`` (default; the data's mean level everywhere, the
        classical start) or ``"image"`` (the data less ``background``, floored at 1e-3
        of its mean level; the flat level beyond the border).  Starting from the image
        keeps its detail from the first iteration: on data with little noise and a
        broad PSF it saves many iterations (flowdec's Hollow Bars, Biggs-Andrews: plain
        RL's best after 300 iterations reached in about 25, best NMSE 0.444 against
        0.470), but it also keeps the noise (noisy phantoms of
        ``benchmarks/quality.py``: lines best NMSE 0.578 against 0.523-0.529, near-edge
        cubes 0.252 against 0.200-0.218).  ``"wiener"``: the linear Wiener (Tikhonov)
        estimate ``F^-1[conj(H) F(image - background) / (|H|^2 + rho)]``, ``rho = 1e-2``
        (:data:`WIENER_START_RHO`, relative to ``|H(0)|^2 = 1``), floored like the image
        start; with non-circulant edges the data are first continued smoothly beyond the
        border (their mirror at the end fading into their mirror at the start).  It starts
        with the detail the PSF passes, sharpened, and without the image start's noise:
        with Biggs-Andrews 2nd order plain RL's best NMSE comes 3-6 iterations sooner than
        from a flat start (``benchmarks/quality.py``: bars 13 vs 19, lines 25 vs 30, beads
        30 vs 36; with ``exponent=3`` beads 17, lines 16, against 22 and 19 with 2.5 from a
        flat start), at a best NMSE within 0.004 of the flat start's or better.  Costs about
        one iteration.  The floor adds flux where the estimate rings below zero (1.01x the
        data's on the deconwolf DAPI demo, 2.1x on RedLionfish's volume, half of whose
        voxels are floored); the first iteration restores it.  With ``stop="auto"`` on
        sparse samples keep the flat start (beads: the count chosen from the Wiener start is
        30 against a best at 196).  In bricks each brick starts from its own Wiener estimate:
        the result depends on the layout (a warning; RedLionfish, 16 bricks, 10 iterations:
        8.0 % rel L2 from the whole volume, 0.7 % from a flat start).  Ignored when resuming
        from ``start``.
    exponent:
        Raise the multiplicative correction to this power, 1 to 3 (default 1: plain RL;
        Meinel 1986), rescaled to the plain update's flux, with guards: from the first
        iteration whose Poisson deviance is more than 1 % above the previous one's, or (with
        Biggs-Andrews) after two iterations of anti-correlated steps, the exponent is 1.  With
        ``"biggs-andrews-2"``, 2.5 takes about 40 % fewer iterations on the sparse phantoms of
        ``benchmarks/quality.py`` (beads, lines), and RedLionfish's phantom is a little better
        at 20 iterations (NMSE 0.166 against 0.191); not for bricks (the result depends on the
        layout: a warning).  Not maximum likelihood while it is above 1.
    start:
        A previous :class:`RichardsonLucyResult` (resume exactly: 30 + 30 iterations
        give the same result as 60, acceleration state included) or an array of the
        image's shape used as the first estimate.
    snapshot_every:
        Keep a copy of the estimate every N iterations in ``result.snapshots``
        (``None`` or 0: no snapshots).
    callback:
        ``callback(figures, estimate)`` after every iteration (``estimate`` is a view
        of the image part of the current estimate: copy it to keep it).  Returning
        ``True`` stops.  Channels of (C, Z, Y, X) input are processed one after the
        other, each with its own iterations, stopping and callbacks.  A function of one
        argument gets ``figures`` only; one of neither form is refused before the run.  In
        bricks: ``callback(BrickFigures, None)`` after each brick (see ``halo``).
    stop:
        ``None`` (run ``iterations``), ``"auto"`` (the count chosen from the data alone,
        at most ``iterations``: binomial-thinning cross-validation, see
        :func:`fijidecon.deconvolve._autostop.choose_iterations`; the choice in
        ``result.auto_stop``; ``gain`` and ``offset`` convert to photo-electrons),
        ``"discrepancy"``, a relative-change tolerance, or a callable; see the module
        docstring.
    background:
        Constant background in the data's units (>= 0): the level of the data without
        signal (camera offset plus the sample's uniform background).  One number, one
        per channel (a list, channel order), or ``"auto"``: estimated on each (T, C)
        volume as its lowest local mean (:mod:`fijidecon.deconvolve._background`; in
        bricks and Dask runs too, on the whole volume: the same value whatever the
        bricks), reported in
        ``result.background`` and ``result.notes``.
    read_noise:
        Gaussian read-noise standard deviation in the data's units (>= 0).
    voxel_size:
        The image's (Z, Y, X) or (Y, X) spacing, any length unit (TV weights its
        gradients with it; with ``psf_voxel_size`` the PSF is matched to it).
    psf_voxel_size:
        The PSF's spacing in the same unit; when it differs from ``voxel_size`` the
        PSF is resampled to the image's voxel size (one cubic-spline interpolation,
        centre and flux kept; a note says from what to what).  With one PSF per
        channel, a list of one spacing per PSF (``None`` items: at the image's).
    axes:
        Letters of the image's axes, any order of ``T``, ``C``, ``Z``, ``Y``, ``X``
        (e.g. ``"ZCYX"`` for an ImageJ hyperstack); the result has the same axes.
    memory_limit:
        Bytes (or ``"4GB"``) the run may use; ``None`` (default): a safe fraction of the
        memory available now; ``False``: no check.  A volume whose estimate
        (:func:`~fijidecon.deconvolve.estimate_memory`) exceeds it is processed in bricks
        (a note says so); when even one brick cannot fit, ``MemoryError`` before any
        allocation.
    bricks:
        Force bricks of this core size (Z, Y, X) (default: only when needed, as big as fit).
    halo:
        Voxels read around each brick (one number, or one per axis); default: 1.5 times the
        prepared PSF's full width per axis (``_bricks.HALO_WIDTHS``).  Bricked runs keep a
        fixed iteration count, decided on the central brick when ``stop`` is given;
        ``start``, ``snapshot_every`` and per-iteration callbacks are not available (the
        callback is called as ``callback(BrickFigures, None)`` after each brick, and returning
        ``True`` raises ``CancelledError``; with a Dask image it is not called, and a warning
        says so).
    gain, offset:
        With ``stop="auto"`` only: the camera's gain (photo-electrons per image unit) and
        offset (image units), to convert the data to photo-electrons for the thinning;
        ``None``: estimated from the image's noise (a warning says when the image does not
        look like photo-electrons).
    track_deviance:
        Compute the Poisson deviance every iteration (a logarithm per voxel: 10-20 % of
        an iteration on 2 cores).  ``None`` (default) computes it only for
        ``stop="discrepancy"``; otherwise ``IterationFigures.deviance`` is NaN.  Pass
        ``True`` for a callable ``stop`` or ``callback`` that looks at it.

    Returns
    -------
    RichardsonLucyResult

    Raises
    ------
    ValueError
        NaN/inf, negative data, zero PSF, mismatched dimensionality or channels, bad
        axes or voxel sizes, ``iterations < 0``, unknown options, a ``start`` that does
        not fit (or was computed with other settings, back projector included), a bad
        back projector or ``bp_*`` value, ``bp_*`` given for a back projector that does
        not use them.
    TypeError
        Non-numeric input or a non-integer ``iterations``.

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.deconvolve import convolve, richardson_lucy
    >>> y, x = np.mgrid[-6:7, -6:7]; psf = np.exp(-(x**2 + y**2) / 4.0)
    >>> img = np.zeros((40, 40), np.float32); img[15:25, 18:22] = 50
    >>> res = richardson_lucy(convolve(img, psf, edges="constant") + 1, psf, 20, background=1)
    >>> res.image.shape, res.image.dtype, res.iterations
    ((40, 40), dtype('float32'), 20)
    >>> more = richardson_lucy(convolve(img, psf, edges="constant") + 1, psf, 10, background=1, start=res)
    >>> more.iterations
    30
    """
    voxel_size, psf_voxel_size = _hyper.coords_voxel_sizes(image, psf, voxel_size, psf_voxel_size)
    if isinstance(stop, str) and stop.strip().lower() == "auto":
        from ._autostop import run_auto
        return run_auto(richardson_lucy, image, psf, iterations, gain, offset, dict(
            regularization=regularization, weight=weight, acceleration=acceleration, edges=edges, start=start,
            snapshot_every=snapshot_every, callback=callback, background=background, read_noise=read_noise,
            voxel_size=voxel_size, track_deviance=track_deviance, recenter=recenter, psf_threshold=psf_threshold,
            axes=axes, psf_voxel_size=psf_voxel_size, memory_limit=memory_limit, bricks=bricks, halo=halo,
            back_projector=back_projector, bp_alpha=bp_alpha, bp_beta=bp_beta, bp_order=bp_order, initial=initial,
            exponent=exponent))
    if gain is not None or offset is not None:
        given = "gain" if gain is not None else "offset"
        raise InputError(f"{given}: gain= and offset= are used only with stop='auto'")
    iterations = _validate.check_int("iterations", iterations, 0, _validate.MAX_ITERATIONS)
    edges = _edges.check_edges(edges)
    acceleration = _validate.check_choice("acceleration", acceleration, ACCELERATIONS)
    initial = _validate.check_choice("initial", initial, INITIALS)
    exponent = _validate.check_float("exponent", exponent, 1.0, EXPONENT_MAX)
    if iterations == 0 and start is None:
        _validate.warn(f"iterations: 0, so the result is the initial estimate ({_ZERO_ITERATIONS[initial]}), not a "
                       "deconvolution", RuntimeWarning)
    regularization = _validate.check_choice("regularization", regularization, REGULARIZATIONS)
    weight = DEFAULT_WEIGHT.get(regularization, 0.0) if weight is None else _validate.check_float("weight", weight, 0)
    if regularization is None and weight > 0:
        _validate.warn(f"weight: {weight:g} is used only with a regularization ('tv' or 'tikhonov'); without one it "
                       "has no effect", RuntimeWarning)
    if regularization == "tv" and weight > TV_WEIGHT_WARN:
        _validate.warn(f"weight: {weight:g} is above {TV_WEIGHT_WARN:g}, where Richardson-Lucy with TV turns unstable "
                       "(its divisor 1 - weight div(grad x / |grad x|) nears 0 or below: on a DAPI crop the maximum "
                       "became 7-48x the data's at 0.1-0.5); TV weights are 0.001-0.01 (default 0.002)",
                       RuntimeWarning)
    background = _background.check(background)
    read_noise = _validate.check_float("read_noise", read_noise, 0, READ_NOISE_MAX)
    if snapshot_every is not None:
        snapshot_every = _validate.check_int("snapshot_every", snapshot_every, 0) or None
        if snapshot_every is not None and snapshot_every > iterations and start is None:
            _validate.warn(f"snapshot_every: {snapshot_every} is more than iterations={iterations}: no snapshot is "
                           "kept (the result is the last iterate)", RuntimeWarning)
    bp = _backproject.check(back_projector, bp_alpha, bp_beta, bp_order)
    stop_fn = _stop_rule(stop)
    if isinstance(stop, str) and stop.lower() == "discrepancy":
        track_deviance = True
    track_deviance = False if track_deviance is None else _validate.check_bool("track_deviance", track_deviance)
    callback = _validate.check_callback(callback, "(figures, estimate)")

    opts = dict(edges=edges, background=background, read_noise=read_noise, regularization=regularization,
                weight=weight, acceleration=acceleration, back_projector=bp, initial=initial, exponent=exponent)
    if _bricks.is_dask(image):
        if callback is not None:
            _validate.warn("callback: a Dask image gives a lazy result, computed brick by brick later (by .compute() "
                           "or a write): the callback is not called; for progress use Dask's (e.g. "
                           "dask.diagnostics.ProgressBar)", RuntimeWarning)
        return _lazy(image, psf, axes, iterations, stop_fn, opts, voxel_size, psf_voxel_size, psf_threshold,
                     recenter, bricks, halo, memory_limit, start, snapshot_every)
    layout, vols = _hyper.split(image, psf, axes, allow_negative=read_noise > 0)
    if layout.scale != 1.0:  # extreme values are computed at max 1: the noise model scales with them
        opts.update(read_noise=read_noise * layout.scale)
    bgs = _background.per_volume(background, layout.n_t, layout.n_c, lambda i: vols[i].data, layout.scale)
    tops = [float(np.max(v.data)) for v in vols]
    _check_background(bgs, tops, [v.label for v in vols], layout.scale, auto=background == _background.AUTO)
    vopts = [dict(opts, background=b) for b in bgs]
    bg_note = _background_note(background, bgs, layout.n_c, layout.scale)
    ndim = len(layout.vol_axes)
    _backproject.check(back_projector, bp_alpha, bp_beta, bp_order, ndim)
    if voxel_size is not None:
        voxel_size = _validate.check_spacing("voxel_size", voxel_size, ndim)
    preps = _hyper.prepare_psfs(layout, vols, edges, threshold=psf_threshold, recenter=recenter,
                                voxel_size=voxel_size, psf_voxel_size=psf_voxel_size)
    # warnings about the data once every parameter has been checked (a bad recenter= or an all-zero PSF
    # came after a 'background: 0, but ...' warning)
    _warn_offset(bgs, vols, tops, layout.scale, layout.single)
    if background != _background.AUTO:
        _warn_high(bgs, vols, layout.scale, layout.single)
    plans = _bricks.plan_volumes("richardson-lucy", layout, vols, preps, _memory_options(opts, snapshot_every,
                                 iterations), memory_limit, bricks, halo, np.asarray(image).nbytes)
    if any(p is not None for p in plans) or _autostop.ON_PILOT.get() is not None:
        _bricks.refuse_with_bricks(start=start, snapshot_every=snapshot_every)
        return _with_background(_run_bricked(layout, vols, preps, plans, iterations, stop_fn, vopts, voxel_size,
                                             callback), bgs, layout.scale, bg_note)
    states, starts, done0 = _starts(start, layout, len(vols))
    results, drop_notes = [], []
    with _fft.reuse_memory():
        for i, (vol, prep) in enumerate(zip(vols, preps)):
            eng = _RL(vol.data, prep, edges, bgs[i], opts["read_noise"], regularization, weight,
                      acceleration, voxel_size, bp=bp, exponent=exponent)
            eng.track_deviance = track_deviance
            eng.exponents = _exponent_schedule(i, exponent, done0 + iterations)
            if states[i] is not None:
                eng.restore(states[i])
            else:
                eng.init(starts[i], initial)
            results.append(eng.run(iterations, done0, snapshot_every, callback, stop_fn))
            results[-1]["psf_shift"] = prep.shift
            if regularization is not None:
                _warn_lost_flux(vol, results[-1]["image"], bgs[i], regularization, weight, layout)
            if eng.drop_note is not None:
                drop_notes.append(f"richardson-lucy{'' if layout.single else f' (t={vol.t}, c={vol.c})'}: "
                                  f"{eng.drop_note}")
                _hyper.log.info(drop_notes[-1])
            del eng
    result = _result(layout, results, preps, edges=edges, acceleration=acceleration,
                     regularization=regularization, weight=weight, back_projector=bp.kind)
    result.notes += _bp_notes(bp, preps) + drop_notes + _told_stop(stop, results, vols, iterations, layout.single)
    return _with_background(result, bgs, layout.scale, bg_note)


def _told_stop(stop: Any, results: list[dict], vols: Sequence[Any], iterations: int, single: bool) -> list[str]:
    """A stopping rule (``"discrepancy"`` or a tolerance): a note (logged) of where it stopped each
    volume, and a warning for a volume it never stopped (the result is then the last iterate, which a
    user of the rule would otherwise take for the rule's choice)."""
    if stop is None or callable(stop) or _autostop.THINNED.get():
        return []
    rule = "the discrepancy principle" if isinstance(stop, str) else f"relative change < {float(stop):g}"
    met = [(v, r["iterations"]) for v, r in zip(vols, results) if r["stop_reason"] == "stop"]
    missed = [v for v, r in zip(vols, results) if r["stop_reason"] == "iterations"]
    notes = []
    if met:
        where = "" if single else " (" + "; ".join(f"t={v.t}, c={v.c}: {k}" for v, k in met) + ")"
        notes.append(f"richardson-lucy: stopped by {rule} after {max(k for _, k in met)} iteration(s){where}")
        _hyper.log.info(notes[-1])
    if missed and iterations > 0:
        where = "" if single else " in volume(s) " + ", ".join(f"t={v.t}, c={v.c}" for v in missed)
        _validate.warn(f"stop: {rule} was not met within iterations={iterations}{where}; the result is the last "
                       "iterate: raise iterations, or choose the count another way (stop='auto', snapshots)",
                       RuntimeWarning)
    return notes


def _background_note(background: Any, bgs: Sequence[float], n_c: int, scale: float) -> str | None:
    """With ``background="auto"``, the estimated values in one logged line (also in the result's notes)."""
    if background != _background.AUTO:
        return None
    note = (f"richardson-lucy: background estimated as {_background.describe(bgs, n_c, scale)} (the lowest mean of "
            f"{'x'.join(map(str, _background.WINDOW))} voxels)")
    _hyper.log.info(note)
    return note


def _with_background(result: RichardsonLucyResult, bgs: Sequence[float], scale: float,
                     note: str | None) -> RichardsonLucyResult:
    """The result with the background used (image units; one float when all volumes share it) and its note."""
    vals = [float(b) / scale for b in bgs]
    result.background = vals[0] if len(set(vals)) == 1 else vals
    if note is not None:
        result.notes.insert(0, note)
    return result


def _warn_lost_flux(vol: Any, out: np.ndarray, background: float, regularization: str, weight: float,
                    layout: Any) -> None:
    """A regularization weight too large for the data drains the estimate: say so when less than
    half of the data's sum (above the background) is left (plain RL keeps it)."""
    data = float(np.sum(vol.data, dtype=np.float64)) - background * vol.data.size
    kept = float(np.sum(out, dtype=np.float64)) / data if data > 0 else 1.0
    if kept < FLUX_WARN or kept > 1 / FLUX_WARN:  # drained, or blown up (a TV weight far too large)
        where = "" if layout.single else f" (t={vol.t}, c={vol.c})"
        _validate.warn(f"weight: the result{where} keeps {kept:.2g} of the data's sum: {regularization} weight "
                       f"{weight:g} is too large for these data (try 10x smaller)", RuntimeWarning)


#: Fraction of the data's sum below which (or whose inverse above which) a regularized RL result is warned about.
FLUX_WARN = 0.5
#: TV weights above this warn before the run (measured on a DAPI crop: 0.05 stable, 0.1 maximum 7x the data's).
TV_WEIGHT_WARN = 0.05


def _exponent_schedule(volume: int, exponent: float, last: int) -> dict[int, float] | None:
    """``stop="auto"``'s final run: the exponent per iteration 1..``last`` as on the thinned run
    of (T, C) volume ``volume`` (``_autostop.EXPONENT_DROPS``; its guard then off); else ``None``."""
    drops = _autostop.EXPONENT_DROPS.get()
    if drops is None or exponent == 1:
        return None
    drop = drops[volume] if drops[volume] is not None else last + 1
    return {k: (exponent if k < drop else 1.0) for k in range(1, last + 1)}


def _bp_notes(bp: "_backproject.BackProjector", preps: list) -> list[str]:
    """The back projector's note (per distinct PSF), logged like the PSF notes."""
    notes = []
    for prep in preps:
        line = _backproject.note(bp, prep.kernel)
        if line is not None and line not in notes:
            notes.append(line)
            _hyper.log.info(line)
    return notes


#: The largest ``read_noise`` taken (its square is added to the data in float32).
READ_NOISE_MAX = 1e15


def _check_background(bgs: Sequence[float], tops: Sequence[float], labels: Sequence[str], scale: float = 1.0,
                      auto: bool = False) -> None:
    """A background at or above a volume's maximum (``bgs`` and ``tops``: one per (T, C) volume)
    leaves nothing to deconvolve there (its result collapses to about 0): refused, naming the
    volume, as an offset above the maximum is by ``stop="auto"``.  Estimated (``auto``), it means the
    volume is flat (a blank frame of a time series): a warning, and that volume's result is about 0."""
    for background, top, label in zip(bgs, tops, labels):
        if not (background > 0 and background >= top):
            continue
        where = f" of volume {label}" if len(tops) > 1 else ""
        if auto:
            _validate.warn(f"background: 'auto' found the image{where} flat (its level {background / scale:g} is its "
                           "maximum): no signal to deconvolve, so its result is about 0", RuntimeWarning)
            continue
        raise InputError(f"background: {background / scale:g} is at or above the image's maximum{where} "
                         f"({top / scale:g}); it is the level of the data without signal (camera offset, dark "
                         "level): give a value below the data's")


#: With ``background=0``, a volume whose 1st percentile is above this fraction of its maximum warns.
OFFSET_WARN = 0.05


def _warn_offset(bgs: Sequence[float], vols: Sequence[Any], tops: Sequence[float], scale: float = 1.0,
                 single: bool = True) -> None:
    """``background=0`` (``bgs``, ``tops``: each volume's background and maximum) on data sitting on an
    offset (a camera's, or a uniform background): Richardson-Lucy takes it as signal and digs a dark rim
    around objects; say so once, with a value."""
    if _autostop.THINNED.get():
        return
    _say_offset([(_background.low_level(v.data), top, "" if single else f"volume {v.label}")
                 for v, b, top in zip(vols, bgs, tops) if b <= 0], scale)


def _warn_high(bgs: Sequence[float], vols: Sequence[Any], scale: float = 1.0, single: bool = True) -> None:
    """A background far above a volume's darkest part (:func:`_background.too_high`; ``vols``: the
    volumes, or in a lazy run each channel's central brick at t=0): said once, with the level (the
    mirror of :func:`_warn_offset`)."""
    if _autostop.THINNED.get():
        return
    for b, v in zip(bgs, vols):
        found = _background.too_high(b, v.data)
        if found is not None:
            where = "" if single else f" (volume {v.label})"
            _validate.warn(f"background: {b / scale:.4g} is far above the darkest part of the image{where}, whose "
                           f"lowest local mean is {found[0] / scale:.4g} (pixel noise SD {found[1] / scale:.3g}): "
                           "Richardson-Lucy takes what is below the "
                           "background for none and removes signal there; give about that level, one per channel, or "
                           "'auto'", RuntimeWarning)
            return


#: How many volumes the offset warning names before "and N more".
OFFSET_NAMED = 4


def _say_offset(levels: Sequence[tuple[float, float, str]], scale: float = 1.0) -> None:
    """The offset warning of :func:`_warn_offset`, once, naming every volume (``(low, top, label)``;
    label ``""`` for a single volume) that sits on one, with its level."""
    hits = [(low, top, label) for low, top, label in levels if top > 0 and low > OFFSET_WARN * top]
    if not hits:
        return
    each = [f"{low / scale:.4g} ({100 * low / top:.0f} % of its maximum)" + (f" in {label}" if label else "")
            for low, top, label in hits[:OFFSET_NAMED]]
    more = f" and {len(hits) - OFFSET_NAMED} more volume(s)" if len(hits) > OFFSET_NAMED else ""
    _validate.warn(f"background: 0, but the image's lowest values are about {'; '.join(each)}{more}: a camera "
                   "offset or a uniform background, which Richardson-Lucy then takes as signal (a dark rim around "
                   "objects); give background= about that level, one per channel, or 'auto' (CLI --background)",
                   RuntimeWarning)


def _memory_options(opts: dict, snapshot_every: int | None, iterations: int) -> dict:
    """The options that change how much memory a run needs (see ``estimate_memory``); with
    ``stop="auto"`` chosen on the central brick, that brick's choice too."""
    return dict(edges=opts["edges"], acceleration=opts["acceleration"], regularization=opts["regularization"],
                snapshot_every=snapshot_every, iterations=iterations, back_projector=opts["back_projector"].kind,
                stop="auto" if _autostop.ON_PILOT.get() is not None else None)


def _brick_fn(prep: Any, opts: dict, voxel_size: Any) -> "_bricks.BrickFn":
    """Richardson-Lucy on one brick with the volume's decisions (mean, iteration count)."""
    def fn(data: np.ndarray, dec: "_bricks.Decisions", place: Any) -> np.ndarray:
        eng = _RL(data, prep, opts["edges"], dec.extra["background"], opts["read_noise"], opts["regularization"],
                  opts["weight"], opts["acceleration"], voxel_size, scale=dec.mean, bp=opts["back_projector"],
                  exponent=opts["exponent"], place=place)
        eng.track_deviance = False
        eng.alphas = dec.extra.get("alphas")
        eng.exponents = dec.extra.get("exponents")
        eng.init(None, opts["initial"])
        return eng.run(int(dec.iterations), 0, None, None, None)["image"]
    return fn


def _level(data: np.ndarray, read_noise: float) -> float:
    """The mean of the data as the engine sees it (``read_noise**2`` added, clipped at 0)."""
    s2 = float(read_noise) ** 2
    if s2 == 0:
        return float(np.mean(data, dtype=np.float64))
    return float(np.mean(np.maximum(data + np.float32(s2), 0), dtype=np.float64))


def _decide(pilot: np.ndarray, mean: float, prep: Any, opts: dict, voxel_size: Any, iterations: int,
            stop_fn: Any, exponents: dict[int, float] | None = None,
            place: Any = None) -> tuple["_bricks.Decisions", dict]:
    """A volume's decisions: its ``mean`` and, with a stopping rule, the iteration count at
    which the rule stops on the ``pilot`` brick (the central one, at ``place`` in its volume; its
    run is returned); ``exponents``: the exponent schedule the pilot follows (else its own guard's)."""
    mean = max(float(mean), 1e-20)
    auto = None
    if _autostop.ON_PILOT.get() is not None:  # stop="auto" in bricks: the count chosen on this brick first
        auto = _autostop.choose_on_pilot(np.ascontiguousarray(pilot, dtype=np.float32), prep, opts, voxel_size,
                                         iterations)
        iterations = int(auto["iteration"])
        drops = auto.get("exponent_drops")
        if drops and opts["exponent"] > 1:
            drop = drops[0] if drops[0] is not None else iterations + 1
            exponents = {k: (opts["exponent"] if k < drop else 1.0) for k in range(1, iterations + 1)}
    eng = _RL(np.ascontiguousarray(pilot, dtype=np.float32), prep, opts["edges"], opts["background"],
              opts["read_noise"], opts["regularization"], opts["weight"], opts["acceleration"], voxel_size, scale=mean,
              bp=opts["back_projector"], exponent=opts["exponent"], place=place)
    eng.track_deviance = stop_fn is not None
    eng.exponents = exponents
    eng.init(None, opts["initial"])
    r = eng.run(iterations, 0, None, None, stop_fn)
    extra = {"alphas": {f.iteration: f.acceleration for f in r["history"]},
             "exponents": {f.iteration: f.exponent for f in r["history"]}, "background": opts["background"]}
    if auto is not None:
        r["stop_reason"] = "auto"
    return _bricks.Decisions(mean=mean, iterations=r["iterations"], extra=extra), r


#: What ``iterations=0`` returns, per ``initial`` (said in its warning).
_ZERO_ITERATIONS = {"flat": "initial='flat': the image's mean everywhere", "image": "initial='image': the image",
                    "wiener": "initial='wiener': the Wiener estimate"}


def _warn_layout_dependence(opts: dict, plans: list) -> None:
    """Options whose bricked result depends on the brick layout (measured): one warning each."""
    if not any(p is not None and p.n > 1 for p in plans):
        return
    if opts["exponent"] > 1:
        _validate.warn(f"exponent: {opts['exponent']:g} in bricks gives a result that depends on the brick layout "
                       "(RedLionfish's phantom at 20 iterations: 23 % rel L2 from the whole volume in 8 bricks, 3.4 % "
                       "without the exponent); use exponent=1 for bricked runs", RuntimeWarning)
    if opts["edges"] == "reflect":  # a brick's mirrored grid wraps onto its own halo, not onto the far border
        _validate.warn("edges: 'reflect' in bricks: near the volume's border each brick's mirrored grid wraps onto "
                       "its own halo, not onto the far border as the whole volume's does, so the result there depends "
                       "on the brick layout (dapi_001, 2 bricks, 20 iterations, background 2100: 9 % of the maximum "
                       "on the volume's faces, 0.5 % 8 voxels in); the default 'non-circulant' edges agree with the "
                       "whole volume (2e-4)", RuntimeWarning)
    if opts["initial"] == "wiener":  # each brick's Wiener estimate sees only its brick and halo
        _validate.warn("initial: 'wiener' in bricks starts each brick from its own Wiener estimate, so the result "
                       "depends on the brick layout (RedLionfish's volume, 10 iterations of the 2nd order in 16 bricks "
                       "of 160x33x33: 8.0 % rel L2 from the whole volume, 0.7 % from a flat start); use initial='flat' "
                       "for bricked runs", RuntimeWarning)


def _run_bricked(layout, vols, preps, plans, iterations, stop_fn, vopts, voxel_size, callback) -> RichardsonLucyResult:
    """Each volume in bricks (whole when its plan is None), decisions taken per volume
    (``vopts``: the options of each volume, which differ in their background only)."""
    opts = vopts[0]
    _warn_layout_dependence(opts, plans)
    t0 = time.perf_counter()
    total = sum(p.n if p is not None else 1 for p in plans)
    done = [0]
    outs, its, reasons, notes = [], [], [], []
    with _fft.reuse_memory():
        for vol, prep, plan, vo in zip(vols, preps, plans, vopts):
            plan = plan or _bricks.Plan(vol.data.shape, vol.data.shape, (0,) * vol.data.ndim)
            mean = _level(vol.data, opts["read_noise"])
            dec, r = _decide(vol.data[plan.pilot().outer], mean, prep, vo, voxel_size, iterations, stop_fn,
                             _exponent_schedule(len(outs), opts["exponent"], iterations),
                             plan.pilot().place(vol.data.shape))
            outs.append(_bricks.run_numpy(vol.data, plan, _brick_fn(prep, opts, voxel_size), dec, done=done,
                                          total=total, t0=t0, callback=callback,
                                          pilot_result=(plan.pilot(), r["image"])))
            its.append(dec.iterations)
            reasons.append(r["stop_reason"])
            who = "richardson-lucy" if layout.n_c == 1 else f"volume t={vol.t}, c={vol.c}"
            note = f"{who}: bricked: {plan.describe()}" + (
                f"; {dec.iterations} iterations, decided by the stopping rule on the central brick (the whole volume's "
                "count may differ)"
                if plan.n > 1 and r["stop_reason"] != "iterations" else "")
            notes.append(note)
            _hyper.log.info(note)
    image = layout.merge(outs, method="richardson_lucy")
    return RichardsonLucyResult(image, max(its), {}, [], reasons[0] if len(set(reasons)) == 1 else "mixed",
                                notes=_hyper.notes_of(preps) + notes + _bp_notes(opts["back_projector"], preps),
                                psf_report=_hyper.reports_of(layout, preps), back_projector=opts["back_projector"].kind,
                                **{k: opts[k] for k in ("edges", "acceleration", "regularization", "weight")})


def _lazy(image, psf, axes, iterations, stop_fn, opts, voxel_size, psf_voxel_size, psf_threshold, recenter,
          bricks, halo, memory_limit, start, snapshot_every) -> RichardsonLucyResult:
    """A Dask array in: a lazy Dask array out, one task per brick and (T, C) volume."""
    _bricks.refuse_with_bricks(start=start, snapshot_every=snapshot_every)
    lv, means = _bricks.lazy_volumes(image, psf, axes, allow_negative=opts["read_noise"] > 0,
                                     offset=opts["read_noise"] ** 2, lows=True)
    ndim = len(lv.vol_axes)
    if voxel_size is not None:
        voxel_size = _validate.check_spacing("voxel_size", voxel_size, ndim)
    vol_shape = tuple(lv.canon.shape[2:])
    preps = _bricks.lazy_preps(lv, opts["edges"], psf_threshold, recenter, voxel_size, psf_voxel_size)
    plans = _bricks.lazy_plans("richardson-lucy", vol_shape, preps, _memory_options(opts, None, iterations),
                               memory_limit, bricks, halo)
    _warn_layout_dependence(opts, plans)

    def central(i: int) -> np.ndarray:  # (T, C) volume i's central brick, read now
        return np.asarray(lv.volume(i // lv.n_c, i % lv.n_c)[plans[i % lv.n_c].pilot().outer], dtype=np.float32)

    # 'auto' on the whole volume, read once more slab by slab: the same value whatever the bricks (on the
    # central brick it moved with the budget: 2136 whole, 2379 in 12 bricks on dapi_001)
    bgs = _background.per_volume(opts["background"], lv.n_t, lv.n_c, lambda i: lv.volume(i // lv.n_c, i % lv.n_c))
    _check_background(bgs, lv.tops, [f"t={i // lv.n_c}, c={i % lv.n_c}" for i in range(len(lv.tops))],
                      auto=opts["background"] == _background.AUTO)
    if not _autostop.THINNED.get():  # each channel at t=0: its level from the data pass, the high one's on the
        # central brick (read once more)
        _say_offset([(lv.lows[c], lv.tops[c], "" if lv.n_c == 1 else f"channel {c}")
                     for c in range(lv.n_c) if bgs[c] <= 0])
        if opts["background"] != _background.AUTO:  # its darkest part: a lower bound of the volume's
            given = [c for c in range(lv.n_c) if bgs[c] > 0]
            _warn_high([bgs[c] for c in given], [_hyper.Volume(0, c, central(c), None) for c in given],
                       single=lv.n_c == 1)
    bg_note = _background_note(opts["background"], bgs, lv.n_c, 1.0)
    counts: list[int] = []
    reasons: list[str] = []

    def decide(vol, plan, prep, mean):
        vo = dict(opts, background=bgs[len(counts)])  # lazy_run decides the (T, C) volumes in order
        # nothing to decide on the central brick (momentum's factors are a fixed schedule): not computed twice
        if stop_fn is None and opts["acceleration"] in MOMENTUM_OR_NONE and opts["exponent"] == 1 and \
                _autostop.ON_PILOT.get() is None:
            dec = _bricks.Decisions(mean=max(mean, 1e-20), iterations=iterations,
                                    extra={"background": vo["background"]})
            why, done = "iterations", None
        else:  # the central brick decides (iterations, extrapolation factors, exponents), computed now
            pilot = np.asarray(vol[plan.pilot().outer], dtype=np.float32)
            dec, r = _decide(pilot, mean, prep, vo, voxel_size, iterations, stop_fn,
                             place=plan.pilot().place(plan.shape))
            why, done = r["stop_reason"], (plan.pilot(), r["image"])  # its result: not computed again
        counts.append(dec.iterations)
        reasons.append(why)
        return dec, done

    lazy = _bricks.lazy_run(lv, means, preps, plans, lambda prep: _brick_fn(prep, opts, voxel_size), decide)
    decided = (f"; {', '.join(map(str, counts))} iterations, decided by the stopping rule on each volume's central "
               "brick (the whole volume's count may differ)" if plans[0].n > 1 and set(reasons) != {"iterations"}
               else "")
    notes = _hyper.notes_of(preps) + [f"bricked (lazy): {plans[0].describe()}{decided}"] + \
        _bp_notes(opts["back_projector"], preps)
    reason = reasons[0] if len(set(reasons)) == 1 else "mixed"  # as the in-memory bricked run says
    return _with_background(RichardsonLucyResult(
        lazy, max(counts), {}, [], reason, notes=notes,
        psf_report=[p.report for p in preps] if len(preps) > 1 else preps[0].report,
        back_projector=opts["back_projector"].kind,
        **{k: opts[k] for k in ("edges", "acceleration", "regularization", "weight")}), bgs, 1.0, bg_note)


def _starts(start: Any, layout: "_hyper.Layout", n: int) -> tuple[list[Any], list[Any], int]:
    """Per-volume resume states, start arrays and the iterations already done."""
    if isinstance(start, RichardsonLucyResult):
        st = start._state
        if st is None:
            raise InputError("start: this result's state was dropped; pass start=result.image to restart from it")
        st = st if isinstance(st, list) else [st]
        if len(st) != n:
            raise InputError(f"start: result has {len(st)} volumes, image has {n}")
        return st, [None] * n, start.iterations
    if start is None:
        return [None] * n, [None] * n, 0
    vols = layout.split_like(start, "start")
    return [None] * n, [_edges.as_image(v, "start", allow_negative=False) * np.float32(layout.scale)
                        for v in vols], 0


def _result(layout: "_hyper.Layout", results: list[dict], preps: list[Any], **common: Any) -> RichardsonLucyResult:
    notes = _hyper.notes_of(preps)
    report = _hyper.reports_of(layout, preps)
    if layout.single:
        r = results[0]
        # merge: a DataArray's dims, coords and attrs back, as the other methods give them
        snaps = {k: layout.merge([v], method="richardson_lucy") for k, v in r["snapshots"].items()}
        return RichardsonLucyResult(layout.merge([r["image"]], method="richardson_lucy"), r["iterations"], snaps,
                                    r["history"], r["stop_reason"],
                                    psf_shift=r["psf_shift"], notes=notes, psf_report=report, _state=r["state"],
                                    **common)
    snaps = {}
    for k in results[0]["snapshots"]:
        if all(k in r["snapshots"] for r in results):
            snaps[k] = layout.merge([r["snapshots"][k] for r in results])
    reasons = {r["stop_reason"] for r in results}
    return RichardsonLucyResult(layout.merge([r["image"] for r in results]), max(r["iterations"] for r in results),
                                snaps, [r["history"] for r in results], reasons.pop() if len(reasons) == 1 else "mixed",
                                psf_shift=[r["psf_shift"] for r in results], notes=notes, psf_report=report,
                                _state=[r["state"] for r in results], **common)


def _digest(a: np.ndarray) -> int:
    """A checksum of an array's values (CRC-32 of its bytes, about 1 ms per 4 MB): what a resumed run's
    PSF and data are compared by."""
    import zlib

    return zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B"))


def _stop_rule(stop: Any) -> Callable[[IterationFigures], bool] | None:
    if stop is None:
        return None
    if callable(stop):
        return stop
    if isinstance(stop, str):
        if stop.lower() == "discrepancy":
            return lambda f: f.deviance <= f.deviance_expected
        raise InputError(f"stop: expected None, 'discrepancy', 'auto', a tolerance or a callable, got {stop!r}")
    try:
        tol = float(stop)
    except (TypeError, ValueError):
        raise InputTypeError(f"stop: expected None, 'discrepancy', a tolerance or a callable, got {stop!r}") from None
    if not tol > 0:
        raise InputError(f"stop: a relative-change tolerance must be > 0, got {stop!r}")
    return lambda f: f.relative_change < tol


def _power(c: np.ndarray, q: float, t: np.ndarray, clip: bool = True) -> None:
    """``c <- max(c, 0) ** q`` in place (``t``: scratch of ``c``'s size): multiplications and a
    square root for whole and half exponents up to 4 (2: one pass, 2.5 and 3: three), ``np.power``
    (much slower) otherwise.  ``clip=False``: ``|c| ** q`` (``c`` is >= 0 up to FFT round-off;
    abs is cheaper than maximum)."""
    if clip:
        np.maximum(c, 0, out=c)
    else:
        np.abs(c, out=c)
    k = int(round(2 * q))
    if abs(2 * q - k) > 1e-6 or k > 8:
        np.power(c, np.float32(q), out=c)
        return
    n, half = divmod(k, 2)  # q = n + half / 2
    if k <= 2:  # q = 1 (q = 0.5 is refused by the caller)
        return
    if k == 4:
        np.multiply(c, c, out=c)
        return
    if half:
        np.sqrt(c, out=t)  # t = c^(1/2)
    else:
        np.copyto(t, c)  # t = c
        n -= 1
    for _ in range(n - 1):
        np.multiply(t, c, out=t)
    np.multiply(c, t, out=c)


def _first(k: int) -> str:
    """The first ``k`` iterations in words: "iteration 1" or "iterations 1-k"."""
    return "iteration 1" if k == 1 else f"iterations 1-{k}"


class _RL:
    """The iteration for one channel on one work grid (float32, buffers reused).

    Each blur (``H``, then ``H^T``) is split into plane-wise FFTs (axes 1.., one block
    of planes along axis 0 at a time, :func:`_fft.rfft_planes`) and an FFT along axis
    0 of the whole spectrum, between which the OTF is applied.  The element-wise work
    of an iteration - the ratio ``g / (Hx + b)`` and the multiplicative update - is
    done on each block of planes right after its inverse plane-wise FFT and before
    its forward one, while the block is in cache; blocks are spread over threads.
    Without acceleration, the update also starts the next iteration's forward
    transform.  So the data, the estimate and the ratio are each read once per
    iteration outside the FFTs, and no work-grid temporaries are allocated: the
    spectrum buffer (4 bytes per work voxel) is kept for the whole run.
    """

    def __init__(self, im, prep, edges, background, read_noise, regularization, weight, acceleration, voxel_size,
                 scale=None, bp=None, exponent=1.0, place=None):
        self.geo = geo = _edges.geometry(edges, im.shape, prep.kernel.shape, place)
        self.inputs = (_digest(prep.kernel), _digest(im))  # a resumed run must be on the same PSF and data
        self.work = geo.work_shape
        self.ndim = im.ndim
        self.plane = int(np.prod(self.work[1:]))
        g = geo.data(im)
        s2 = float(read_noise) ** 2
        if s2 > 0:
            g = np.maximum(g + np.float32(s2), 0, dtype=np.float32)
        self.g = np.ascontiguousarray(g, dtype=np.float32)
        self.b = np.float32(background + s2)
        self.n_data = self.g.size
        self.g_sum = float(self.g.sum(dtype=np.float64))
        # the data's mean level (eps, start level, Tikhonov) over the image itself, not its mirrored margin
        # (a bricked run gives the whole volume's: with the margin in, reflect edges and a background
        # started each brick at another level, 10 % of the maximum off after one iteration on dapi_001)
        self.scale = (max(float(self.g[geo.crop].mean(dtype=np.float64)), 1e-20) if scale is None
                      else float(scale))
        self.eps = np.float32(1e-6 * self.scale)
        self.otf = _otf.otf(prep.kernel, self.work)
        bp_spec = None if bp is None else _backproject.spectrum(bp, self.otf, self.work, prep.kernel)
        self.bp = None  # set below: the observed voxels are found with the matched adjoint
        self.reg, self.weight, self.accel = regularization, weight, acceleration
        self.spacing = None
        if voxel_size is not None:
            m = min(voxel_size)
            self.spacing = tuple(v / m for v in voxel_size)
        self.winv = None
        self.w = None
        # a non-negative kernel (the flipped PSF, a Gaussian) back-projects as the matched adjoint does:
        # normalised by B^T 1 on the data box (the flipped PSF then gives plain RL, whatever the edges)
        positive = bp_spec is not None and bp.kind == "array" and bool(np.all(bp.kernel >= 0))
        if not geo.full_box:
            mask = np.zeros(self.work, np.float32)
            mask[geo.box] = 1
            self.bp = bp_spec if positive else None
            w = self._apply(mask, conj=True)
            self.bp = None
            del mask
            ok = w >= W_MIN
            winv = np.zeros(self.work, np.float32)
            if bp_spec is not None and not positive:
                # unmatched: B^T 1 rings (negative outside the box, far from 1 inside it), so the
                # ratio is taken as 1 outside the data box (B^T 1 = 1); outside the box the correction
                # B(ratio - 1) is damped by (H^T 1)^NEUTRAL_POWER (those voxels are only partly observed)
                np.power(w, NEUTRAL_POWER, out=winv, where=ok)
                winv[geo.box] = 1
                w = ok.astype(np.float32)
            else:
                np.divide(1, w, out=winv, where=ok)
            self.winv = winv
            if regularization == "tv":
                w[~ok] = 0
                self.w = w
            del w, ok
        # an unmatched back projector's spectrum replaces conj(otf) in every adjoint (4 bytes per work voxel)
        self.bp = bp_spec
        self.neutral = bp_spec is not None and not positive and not geo.full_box  # ratio - 1 back-projected, 1 added
        self.key = (self.work, edges, acceleration, regularization, weight, float(self.b), float(exponent))  # KEY_FIELDS
        if bp is not None and not bp.matched:
            self.key += (bp.key(),)
        self.S = np.empty(_fft.rfft_shape(self.work), np.complex64)
        self.S_holds_x = False  # S = plane-wise FFT of x (started by the last update)
        self.S_holds_y = False  # momentum: S = FFT of the next extrapolation, held in gprev (the last update)
        self.x = self.xprev = self.gprev = None
        self.hprev = None  # biggs-andrews-2: the step x_{k-1} - x_{k-2} (its second-order term)
        self.alpha = 0.0
        self.mom_k = 0  # momentum: iterations done
        self.alphas = None  # a bricked run: the central brick's extrapolation factors, used by every brick
        self.q = float(exponent)  # the correction's exponent now (1 once the guard has dropped it)
        self.dev_prev = float("inf")  # the guard: the last iteration's Poisson deviance
        self.zigzag = 0  # the guard with Biggs-Andrews: successive iterations whose steps were anti-correlated
        self.drop_note: str | None = None  # why and when a guard set the exponent to 1 (this run)
        self.glogg = None  # the guard: sum(g log g), computed once
        self.exponents = None  # a bricked run: the central brick's exponents, used by every brick
        self.track_deviance = True
        self.expected = float("nan")

    # -- state ---------------------------------------------------------------------
    def init(self, start: np.ndarray | None, initial: str = "flat") -> None:
        """The first estimate: ``start`` (in the image box) or the ``initial`` rule."""
        level = max(self.scale - float(self.b), 1e-6 * self.scale)
        if start is None:
            x = np.full(self.work, level, np.float32)
            if initial == "image":  # the data less the background (g and b both carry read_noise**2)
                np.maximum(self.g - self.b, np.float32(INITIAL_FLOOR * self.scale), out=x[self.geo.box])
            elif initial == "wiener":
                del x
                x = self._wiener_start()
        else:
            s = self.geo.data(start)
            x = np.full(self.work, max(float(s.mean()), 1e-6 * self.scale), np.float32)
            x[self.geo.box] = s
        if self.winv is not None:
            x[self.winv == 0] = 0
        self.x = x
        self.S_holds_x = self.S_holds_y = False

    def _wiener_start(self) -> np.ndarray:
        """``max(F^-1[conj(H) F(d) / (|H|^2 + rho)], floor)`` on the work grid, ``d`` = the data less
        the background, continued smoothly beyond the data box (:meth:`_edges.Geometry.extend`);
        ``rho`` = :data:`WIENER_START_RHO`.  Uses the spectrum buffer; one work-grid temporary."""
        d = self.geo.extend(self.g - self.b)
        self._forward(np.ascontiguousarray(d, np.float32))
        del d
        self.S_holds_x = False
        _fft.fft_axis0(self.S)
        s, ov, rho = self.S.reshape(-1), self.otf.reshape(-1), np.float32(WIENER_START_RHO)

        def fn(a, b):
            o = ov[a:b]
            t = _par.scratch(b - a, np.complex64)
            p = _par.scratch(b - a)
            np.abs(o, out=p)
            p *= p
            p += rho
            np.conjugate(o, out=t)
            t /= p
            s[a:b] *= t

        _par.run(s.size, fn)
        x = _fft.irfftn(self.S, self.work, overwrite_x=True)
        np.maximum(x, np.float32(INITIAL_FLOOR * self.scale), out=x)
        return np.ascontiguousarray(x, dtype=np.float32)

    def restore(self, st: dict) -> None:
        if st["key"] != self.key:
            diff = [f"{n} {a!r} -> {b!r}" for n, a, b in itertools.zip_longest(KEY_FIELDS, st["key"], self.key)
                    if a != b]
            raise InputError("start: the previous result was computed with other settings or data shape ("
                             + "; ".join(diff) + "); pass start=result.image to restart from its image")
        other = [w for w, a, b in zip(("PSF", "image"), st.get("inputs", self.inputs), self.inputs) if a != b]
        if other:
            raise InputError(f"start: the previous result was computed with another {' and '.join(other)} (the same "
                             "shape, other values): resuming would mix two problems; pass start=result.image to "
                             "restart from its image")
        # copies: the previous result stays valid and resumable
        self.x = st["x"].copy()
        self.xprev = None if st["xprev"] is None else st["xprev"].copy()
        self.gprev = None if st["gprev"] is None else st["gprev"].copy()
        self.hprev = None if st.get("hprev") is None else st["hprev"].copy()
        self.alpha = st["alpha"]
        self.mom_k = st.get("mom_k", 0)
        self.q, self.dev_prev = st.get("exponent", self.q), st.get("dev_prev", self.dev_prev)
        self.zigzag = int(st.get("zigzag", 0))
        self.S_holds_x = self.S_holds_y = False

    # -- operators -----------------------------------------------------------------
    def _cmul(self, S: np.ndarray, conj: bool = False) -> None:
        """``S *= otf`` (the blur) or ``S *= conj(otf)`` (its adjoint) in place; the
        conjugate is taken chunk by chunk in cache, not kept (saves 4 bytes per voxel).
        With an unmatched back projector, the adjoint is ``S *= bp``."""
        s, ov = S.reshape(-1), self.otf.reshape(-1)
        bv = None if self.bp is None else self.bp.reshape(-1)

        def fn(a, b):
            if conj and bv is not None:
                s[a:b] *= bv[a:b]
            elif conj:
                t = _par.scratch(b - a, np.complex64)
                np.conjugate(ov[a:b], out=t)
                s[a:b] *= t
            else:
                s[a:b] *= ov[a:b]

        _par.run(s.size, fn)

    def _apply(self, x: np.ndarray, conj: bool = False) -> np.ndarray:
        """``H x`` (or ``H^T x``) on the work grid, whole-array FFTs (set-up only)."""
        S = _fft.rfftn(x)
        self._cmul(S, conj)
        return _fft.irfftn(S, self.work, overwrite_x=True)

    def _planes(self, n: int, fn: Callable[[int, int, int], Any]) -> np.ndarray:
        """``fn(a, b, fft_workers)`` over blocks of planes ``[a, b)`` covering ``[0, n)``.

        Blocks are spread over threads that each run single-threaded FFTs; when there
        is only one thread (few, big planes) its FFTs use all workers."""
        w = 1 if _par.threads(n, self.plane, _par.PLANE_BLOCK) > 1 else _fft.n_workers()
        return _par.run(n, lambda a, b: fn(a, b, w), self.plane, _par.PLANE_BLOCK)

    def _spectral(self, conj: bool = False) -> None:
        """The axis-0 half of a blur: ``S <- ifft0(otf * fft0(S))`` in place (or with
        ``conj(otf)``); whole-array FFTs with all workers (measured as fast as blocks of
        columns in cache)."""
        _fft.fft_axis0(self.S)
        self._cmul(self.S, conj)
        _fft.fft_axis0(self.S, inverse=True)

    def _forward(self, x: np.ndarray, xprev: np.ndarray | None = None, alpha: float = 0.0,
                 floor: float = 0.0) -> None:
        """``S <-`` plane-wise FFT of ``x``; with ``xprev``, of the extrapolation
        ``y = max(x + alpha (x - xprev), floor)``, which is written into ``xprev``."""
        S, n_last = self.S, self.work[-1]
        al, fl = np.float32(alpha), np.float32(floor)

        def fn(a, b, w):
            if xprev is None:
                y = x[a:b]
            else:
                y = xprev[a:b]
                y -= x[a:b]
                y *= -al
                y += x[a:b]
                np.maximum(y, fl, out=y)
            _fft.rfft_planes(y, S[a:b], n_last, w)

        self._planes(self.work[0], fn)
        self.S_holds_x = xprev is None

    def _forward_second(self, x: np.ndarray, xprev: np.ndarray, alpha: float) -> None:
        """Second-order Biggs-Andrews: ``S <-`` plane-wise FFT of ``y = max(x + a h_k +
        a^2/2 (h_k - h_{k-1}), 0)`` with ``h_k = x - xprev`` (``y = x`` when ``a = 0``);
        ``h_k`` replaces ``h_{k-1}`` in ``self.hprev``, ``y`` is written into ``xprev``."""
        S, n_last = self.S, self.work[-1]
        second = self.hprev is not None
        if not second:
            self.hprev = np.empty_like(x)
        hprev = self.hprev
        c1, c2 = np.float32(alpha + alpha * alpha / 2), np.float32(alpha * alpha / 2)
        zero = np.float32(MOMENTUM_FLOOR * self.scale)

        def fn(a, b, w):
            xs, h, hp = x[a:b], xprev[a:b], hprev[a:b]
            np.subtract(xs, h, out=h)  # h_k
            if alpha > 0:
                t = _par.scratch(h.size).reshape(h.shape)
                np.multiply(h, c1, out=t)
                t += xs
                if second:
                    hp *= c2
                    t -= hp
                hp[...] = h
                np.maximum(t, zero, out=h)  # y, in x_{k-1}'s buffer
                _fft.rfft_planes(h, S[a:b], n_last, w)
            else:
                hp[...] = h
                _fft.rfft_planes(xs, S[a:b], n_last, w)

        self._planes(self.work[0], fn)
        self.S_holds_x = not alpha > 0

    def _ratio(self, guard: bool = False) -> float:
        """``S <-`` plane-wise FFT of ``g / (Hx + b)`` (0 outside the data box), given
        ``S`` = the plane-wise FFT of ``Hx``; returns the Poisson deviance of x (NaN
        unless tracked or ``guard``: the exponent's guard, the deviance without its
        expected value)."""
        S, g, b, eps = self.S, self.g, self.b, self.eps
        n_last, nx = self.work[-1], g.shape[-1]
        rows = g.shape[1:-1]
        nz = g.shape[0]
        if nz < self.work[0]:
            S[nz:] = 0
        tiny, one = np.float32(1e-30), np.float32(1)
        beps = np.float32(b + eps)
        track = self.track_deviance
        guard = guard and not track
        neutral = self.neutral

        def fn(a, c, w):
            h = _fft.irfft_planes(S[a:c], n_last, rows, w)
            d = h[..., :nx] if nx < n_last else h  # Hx over the data box
            gg = g[a:c]
            # m = |Hx| + b + eps: Hx >= 0 up to FFT round-off; abs is 4x cheaper than maximum
            np.abs(d, out=d)
            d += beps
            sums = None
            if track:
                msum = float(d.sum())
                t = np.maximum(d, one)
                np.reciprocal(t, out=t)
                isum = float(t.sum())
                np.divide(gg, d, out=d)
                np.maximum(d, tiny, out=t)  # g log(g/m) with 0 log 0 = 0
                np.log(t, out=t)
                sums = (float(np.vdot(gg, t)), msum, isum)
            elif guard:  # sum(g log g) - sum(g log m): m >= b + eps > 0, no clipping
                msum = float(np.einsum("ijkl"[:d.ndim] + "->", d))  # 4x faster than d.sum() on this view
                t = _par.scratch(d.size).reshape(d.shape)
                np.log(d, out=t)
                sums = (-float(np.vdot(gg, t)), msum, 0.0)
                np.divide(gg, d, out=d)
            else:
                np.divide(gg, d, out=d)
            if neutral:
                d -= one
            _fft.rfft_planes(d, S[a:c], n_last, w)
            return sums

        sums = self._planes(nz, fn)
        if not track:
            self.expected = float("nan")
            if not guard:
                return float("nan")
        kl, msum, isum = sums
        if guard:
            kl += self._glogg()
        # expected deviance of Poisson data with these means: 1 + 1/(6m) + O(1/m^2) per voxel
        if track:
            self.expected = 1.0 + isum / (6.0 * self.n_data)
        return float(2.0 * (kl - self.g_sum + msum) / self.n_data)

    def _glogg(self) -> float:
        """``sum(g log g)`` (0 log 0 = 0), once: the constant part of the guard's deviance."""
        if self.glogg is None:
            g, n = self.g.reshape(-1), 1 << 20
            self.glogg = sum(float(np.vdot(g[a:a + n], np.log(np.maximum(g[a:a + n], np.float32(1e-30)))))
                             for a in range(0, g.size, n))
        return self.glogg

    def _tv_div(self, x: np.ndarray) -> np.ndarray:
        """div(grad x / |grad x|) with forward differences (zero at the far edge)."""
        sp = self.spacing or (1.0,) * x.ndim
        grads = []
        norm = np.full(x.shape, np.float32((1e-3 * self.scale) ** 2), np.float32)
        for ax in range(x.ndim):
            if x.shape[ax] == 1:
                grads.append(None)
                continue
            d = np.zeros_like(x)
            hi = [slice(None)] * x.ndim
            lo = [slice(None)] * x.ndim
            hi[ax], lo[ax] = slice(1, None), slice(0, -1)
            np.subtract(x[tuple(hi)], x[tuple(lo)], out=d[tuple(lo)])
            d /= np.float32(sp[ax])
            norm += d * d
            grads.append(d)
        np.sqrt(norm, out=norm)
        div = np.zeros_like(x)
        for ax, d in enumerate(grads):
            if d is None:
                continue
            d /= norm
            hi = [slice(None)] * x.ndim
            lo = [slice(None)] * x.ndim
            hi[ax], lo[ax] = slice(1, None), slice(0, -1)
            first = [slice(None)] * x.ndim
            first[ax] = slice(0, 1)
            # backward difference with d[-1] := 0 (adjoint of the forward difference)
            div[tuple(hi)] += (d[tuple(hi)] - d[tuple(lo)]) / np.float32(sp[ax])
            div[tuple(first)] += d[tuple(first)] / np.float32(sp[ax])
        return div

    # -- one iteration ---------------------------------------------------------------
    def step(self, prefetch: bool = False) -> tuple[float, float, float, float, float]:
        """One iteration.  ``prefetch``: another follows, so (without acceleration)
        the update also computes the plane-wise FFT of the new estimate.  Returns the
        relative change, the deviance, the flux, the extrapolation factor and the exponent."""
        accel = self.accel is not None
        x = self.x
        alpha = self.alpha if accel else 0.0
        if accel and self.S_holds_y:
            # momentum, prefetched by the last update: y is in gprev and S holds its FFT; x_new
            # reuses x_{k-1} (no longer needed), the step g = x_new - y overwrites y block by block
            y = gbuf = self.gprev
            xnew = self.xprev
        elif accel:
            # buffers: y (the extrapolation, then the step g = x_new - y) and x_new
            # reuse x_{k-1} and g_{k-1}, which are read chunk by chunk before being overwritten
            gbuf = self.xprev if self.xprev is not None else np.empty_like(x)
            xnew = self.gprev if self.gprev is not None else np.empty_like(x)
            if self.xprev is not None and self.accel == "biggs-andrews-2":
                self._forward_second(x, gbuf, alpha)
                y = gbuf if alpha > 0 else x
            elif self.xprev is not None and alpha > 0:
                floor = MOMENTUM_FLOOR * self.scale if self.accel == "momentum" else 0.0
                self._forward(x, gbuf, alpha, floor)
                y = gbuf
            else:
                self._forward(x)
                y = x
        else:
            gbuf, xnew, y = None, x, x
            if not self.S_holds_x:
                self._forward(x)
        self._spectral()
        if self.exponents is not None:  # a brick: the central brick's exponent for this iteration
            self.q = self.exponents.get(self.k, 1.0)
        guard = self.q > 1 and self.exponents is None
        dev = self._ratio(guard=guard)
        if guard:  # the deviance rose: the exponent overshoots, plain RL steps from here on
            if dev > self.dev_prev * (1 + EXPONENT_GUARD):
                self.drop_note = (f"exponent {self.q:g} for {_first(self.k - 1)}, then 1: the Poisson deviance "
                                  f"rose {100 * (dev / self.dev_prev - 1):.1f} % at iteration {self.k}")
                self.q = 1.0
            self.dev_prev = dev
        self._spectral(conj=True)
        div = self._tv_div(y) if self.reg == "tv" and self.weight > 0 else None
        spec = self._next_alpha() if prefetch and self.accel == "momentum" else None
        q_used = self.q  # (the zig-zag guard below sets the next iteration's)
        sums = self._update(x, y, xnew, gbuf, div, prefetch and not accel, spec)
        if accel:
            self.xprev, self.x, self.gprev = x, xnew, gbuf
            if self.accel == "momentum":
                self.alpha = self._next_alpha()
                self.mom_k += 1
            else:
                num, den = float(sums[3]), float(sums[4])
                self.alpha = min(max(num / den, 0.0), ALPHA_MAX) if den > 0 else 0.0
                if self.q > 1 and self.exponents is None and den > 0:  # the guard: zig-zag steps
                    self.zigzag = self.zigzag + 1 if num < 0 else 0
                    if self.zigzag >= EXPONENT_ZIGZAG:
                        self.drop_note = (f"exponent {self.q:g} for {_first(self.k)}, then 1: successive steps "
                                          f"pointed in opposite directions at iterations {self.k - EXPONENT_ZIGZAG + 1}-"
                                          f"{self.k} (the extrapolation was off)")
                        self.q = 1.0
                if self.accel == "biggs-andrews-2":
                    self.alpha **= BA2_POWER
            if self.alphas is not None:  # the factor the next iteration uses, as decided on the central brick
                self.alpha = self.alphas.get(self.k + 1, 0.0)
            # the update prefetched the extrapolation with the next factor (a brick's may differ)
            self.S_holds_y = spec is not None and self.alpha == spec
        rel = float(np.sqrt(sums[0] / sums[1])) if sums[1] > 0 else float("inf")
        return rel, dev, float(sums[2]), alpha, q_used

    def _next_alpha(self) -> float:
        """Momentum's factor for the next iteration: ``m / (m + 3)`` after ``m`` iterations;
        the central brick's in a bricked run."""
        if self.alphas is not None:
            return self.alphas.get(self.k + 1, 0.0)
        m = self.mom_k + 1
        return min(m / (m + 3.0), ALPHA_MAX)

    def _update(self, x, y, xnew, gbuf, div, prefetch, spec=None) -> np.ndarray:
        """``xnew <- y / w * H^T(ratio)`` (plus regularisation) block by block, given
        ``S`` = the plane-wise FFT of ``H^T(ratio)``; returns the sums for the figures
        (and for the acceleration factor).  ``spec`` (momentum, another iteration
        follows): the next extrapolation ``max(x_new + spec (x_new - x), floor)`` is
        written into ``gbuf`` and its plane-wise FFT into ``S`` in the same pass (used
        when the next factor is ``spec``, always but in a bricked run)."""
        S, n_last, P = self.S, self.work[-1], self.plane
        xv, yv, nv = x.reshape(-1), y.reshape(-1), xnew.reshape(-1)
        winv = None if self.winv is None else self.winv.reshape(-1)
        wv = None if self.w is None else self.w.reshape(-1)
        dv = None if div is None else div.reshape(-1)
        gv = None if gbuf is None else gbuf.reshape(-1)
        gp = None if self.gprev is None or gbuf is None else self.gprev.reshape(-1)
        lam = np.float32(self.weight)
        tik = np.float32(self.weight / self.scale) if self.reg == "tikhonov" and self.weight > 0 else None
        one = np.float32(1)
        sp = None if spec is None or gbuf is None else np.float32(spec)
        floor_m = np.float32(MOMENTUM_FLOOR * self.scale)
        biggs = self.accel in BIGGS_ANDREWS
        q = np.float32(self.q)
        unmatched = self.bp is not None
        neutral = self.neutral

        def correction(pa, pb, w, spec_planes):
            """The correction ``c`` of planes [pa, pb) from their spectrum (destroyed)."""
            c = _fft.irfft_planes(spec_planes, n_last, None, w)
            cs = c.reshape(-1)
            a, b = pa * P, pb * P
            if neutral:  # 1 + (H^T 1)^p B(ratio - 1); 0 where unobserved (winv = 0)
                cs *= winv[a:b]
                t = _par.scratch(b - a)
                cs += np.sign(winv[a:b], out=t)
            if dv is not None:
                den = (wv[a:b] if wv is not None else one) - lam * dv[a:b]
                floor = 0.1 * (wv[a:b] if wv is not None else one)
                np.maximum(den, floor, out=den)
                np.divide(cs, den, out=cs, where=den > 0)
                if wv is not None:
                    cs[den <= 0] = 0
            elif winv is not None and not neutral:
                cs *= winv[a:b]
            return c, cs, a, b

        def kept(pa, pb):  # planes [pa, pb) of the raised correction, kept in their spectrum's memory
            return S[pa:pb].reshape(-1).view(np.float32)[:(pb - pa) * P]

        def fluxes(pa, pb, w):  # c**q kept; sum(y c) and sum(y c**q): the plain and the raised update's flux
            _, cs, a, b = correction(pa, pb, w, S[pa:pb])
            ys = yv[a:b]
            plain = np.dot(cs, ys)
            _power(cs, q, _par.scratch(b - a), clip=unmatched)
            kept(pa, pb)[:] = cs
            return [plain, np.dot(cs, ys)]

        norm = None
        if q != 1:  # the correction raised to the exponent (Meinel 1986), at the plain update's flux
            f = self._planes(self.work[0], fluxes)
            norm = np.float32(f[0] / f[1]) if f[1] > 0 and np.isfinite(f[0] / f[1]) else None

        overwrites_s = prefetch or sp is not None  # an FFT into S[pa:pb] below, where the kept planes lie

        def fn(pa, pb, w):
            if q != 1:
                c = kept(pa, pb).reshape((pb - pa,) + tuple(self.work[1:]))
                if overwrites_s:
                    c = c.copy()
                cs = c.reshape(-1)
                a, b = pa * P, pb * P
                if norm is not None:
                    cs *= norm
            else:
                c, cs, a, b = correction(pa, pb, w, S[pa:pb])
            cs *= yv[a:b]  # cs is now the new estimate (already >= 0 with an exponent: _power clipped it)
            if q == 1 and unmatched:  # an unmatched back projector has negative lobes: positivity by clipping
                np.maximum(cs, 0, out=cs)
            elif q == 1:
                np.abs(cs, out=cs)  # >= 0 (only FFT round-off can make it negative)
            if tik is not None:
                t = np.sqrt(1 + 2 * tik * cs)
                t += 1
                np.divide(2 * cs, t, out=cs)
            xs = xv[a:b]
            d = _par.scratch(b - a)
            np.subtract(cs, xs, out=d)
            # einsum sums float32 about 2x faster than ndarray.sum (both accumulate in float32)
            out = [np.dot(d, d), np.dot(xs, xs), float(np.einsum("i->", cs))]
            if gv is not None:
                gs = gv[a:b]
                np.subtract(cs, yv[a:b], out=gs)  # may overwrite y: done with it
                if gp is not None and biggs:  # <g_k, g_{k-1}> and <g_{k-1}, g_{k-1}> for its factor
                    pg = gp[a:b]
                    out += [np.dot(gs, pg), np.dot(pg, pg)]
                else:
                    out += [0.0, 0.0]
                if sp is not None:  # the next extrapolation (the step g is no longer needed)
                    d *= sp
                    np.add(d, cs, out=gs)
                    if sp > 0:
                        np.maximum(gs, floor_m, out=gs)
                    _fft.rfft_planes(gbuf[pa:pb], S[pa:pb], n_last, w)
            nv[a:b] = cs  # may overwrite x (no acceleration) or g_{k-1}: done with them
            if prefetch:
                _fft.rfft_planes(c, S[pa:pb], n_last, w)
            return out

        sums = self._planes(self.work[0], fn)
        self.S_holds_x = prefetch
        return sums

    def image(self) -> np.ndarray:
        return self.x[self.geo.crop]

    def run(self, n, done0, snapshot_every, callback, stop_fn) -> dict:
        history, snaps = [], {}
        stopped = "iterations"
        last = done0 + n
        for k in range(done0 + 1, last + 1):
            t0 = time.perf_counter()
            self.k = k
            rel, dev, flux, alpha, q = self.step(prefetch=k < last)
            fig = IterationFigures(k, rel, dev, flux, alpha, time.perf_counter() - t0, self.expected, q)
            history.append(fig)
            if snapshot_every and k % snapshot_every == 0:
                snaps[k] = np.array(self.image(), dtype=np.float32, copy=True)
            if callback is not None and callback(fig, self.image()) is True:
                stopped = "callback"
                break
            if stop_fn is not None and stop_fn(fig):
                stopped = "stop"
                break
        k_done = history[-1].iteration if history else done0
        self.S = None  # the spectrum buffer is not part of the state
        state = dict(key=self.key, inputs=self.inputs, x=self.x, xprev=self.xprev, gprev=self.gprev, alpha=self.alpha,
                     mom_k=self.mom_k,
                     hprev=self.hprev, exponent=self.q, dev_prev=self.dev_prev,
                     zigzag=self.zigzag)
        out = np.array(self.image(), dtype=np.float32, copy=True)  # the caller's own array
        return dict(image=out, iterations=k_done, snapshots=snaps, history=history, stop_reason=stopped, state=state)
