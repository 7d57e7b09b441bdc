"""Synthetic CRS cohorts: clinical factors per Table 1 of He et al. 2023, imaging, true risk.

Generative model (per centre)
-----------------------------
1. Outcome ``Y`` (recurrence): a fixed number of recurrences per cohort (85 / 200 in centre A,
   14 / 65 in centre B, or the same proportion for other sizes), in random order.
2. Latent type-2 inflammation ``T | Y ~ N(μ·Y, 1)``. Equivalently ``T`` drives recurrence
   through a logistic link: ``logit P(Y=1 | T) = const + μ·T``.
3. Clinical factors given ``T`` (and ``Y``):

   - asthma, allergic rhinitis: probit on ``T`` — ``P = Φ(a0 + a1·T)``, with ``a0, a1``
     solved in closed form so that the rate in each outcome group equals Table 1;
   - blood eosinophils (cells/µL, skewed, non-negative): ``log eos = b0 + b1·T + σ_Y·ε``,
     matching Table 1's mean ± SD in each group as a log-normal;
   - age, sex, hypertension, diabetes, smoking, drinking: drawn per outcome group with
     Table 1's rates / means (they carry the weak signal Table 1 shows, nothing more).
4. Imaging features:

   - nasal polyps (CRSwNP): probit on ``T`` (45 % in non-recurrence, 78 % in recurrence);
   - ethmoid predominance ``E | T ~ N(λ·T, 1)`` (Meng et al. 2019: a high ethmoid /
     maxillary Lund–Mackay ratio goes with recurrence);
   - disease extent ``D | Y ~ N(δ·Y, 1)`` (imaging-only signal, independent of ``T``).

   Per-sinus opacification, disease pattern (mucosal thickening, polyps, retention cyst,
   air–fluid level, complete opacification), lesion HU and anatomy are drawn from these plus
   nuisance randomness, and rendered by :mod:`sinusapp.synth.phantom`.

Because the model is known, each case's **true probability** ``P(Y=1 | all observed
factors)`` is computed exactly (Bayes with quadrature over ``T``), as are the probabilities from
clinical factors alone and from imaging features alone. The **oracle AUC** (AUC of the true
probability) is the best any model can reach on the cohort; the imaging features are the
generator's, so a model that reads the pixels can only approach the imaging-alone oracle.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit, ndtr, ndtri
from scipy.stats import norm, rankdata

from sinusapp.clinical import EOSINOPHILS_MAX_PER_UL
from sinusapp.synth.phantom import Anatomy, Disease, Pose, RegionDisease, ScannerSettings

__all__ = [
    "CENTERS",
    "CLINICAL_COLUMNS",
    "CaseSpec",
    "CenterSpec",
    "auc",
    "oracle_aucs",
    "sample_cohort",
    "scanner_for",
]

log = logging.getLogger(__name__)

#: Columns of clinical.csv, in order (DESIGN §3 plus the generator's truth).
CLINICAL_COLUMNS: tuple[str, ...] = (
    "case_id",
    "recurrence",
    "asthma",
    "allergic_rhinitis",
    "eosinophils_per_ul",
    "age",
    "sex",
    "hypertension",
    "diabetes",
    "smoking",
    "drinking",
    "cohort",
    "center",
    "true_probability",
    "probability_clinical_only",
    "probability_imaging_only",
    "nasal_polyps",
    "ethmoid_predominance",
    "disease_extent",
    "lund_mackay",
    "seed",
)


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Table 1 statistics of one outcome group (rates as fractions)."""

    age_mean: float
    age_sd: float
    female: float
    asthma: float
    allergic_rhinitis: float
    hypertension: float
    diabetes: float
    eos_mean: float
    eos_sd: float
    smoking: float
    drinking: float


@dataclass(frozen=True, slots=True)
class CenterSpec:
    """One centre of the paper: cohort role, size, Table 1 per group, scanner ranges."""

    name: str
    cohort: str
    n_cases: int
    n_recurrence: int
    recurrence: GroupStats
    non_recurrence: GroupStats
    pixel_spacing_mm: tuple[float, float]
    slice_spacings_mm: tuple[float, ...]
    noise_hu: tuple[float, float]
    kernel_sigma_mm: tuple[float, float]
    edge_enhance: tuple[float, float]
    rotation_sd_deg: float
    shift_sd_mm: float
    model: str
    low_res_spacing_mm: float
    #: latent shift μ of T between outcome groups
    latent_shift: float = 1.8

    @property
    def prevalence(self) -> float:
        """Recurrence proportion of the paper's cohort."""
        return self.n_recurrence / self.n_cases


#: The paper's two centres (Table 1) with their simulated scanners.
CENTERS: dict[str, CenterSpec] = {
    "A": CenterSpec(
        name="A",
        cohort="train",
        n_cases=200,
        n_recurrence=85,
        recurrence=GroupStats(
            44.18,
            13.23,
            27 / 85,
            32 / 85,
            29 / 85,
            10 / 85,
            4 / 85,
            390.9,
            277.73,
            21 / 85,
            33 / 85,
        ),
        non_recurrence=GroupStats(
            43.71,
            15.64,
            36 / 115,
            6 / 115,
            14 / 115,
            23 / 115,
            2 / 115,
            257.02,
            192.12,
            28 / 115,
            38 / 115,
        ),
        pixel_spacing_mm=(0.34, 0.45),
        slice_spacings_mm=(0.625, 0.75, 1.0),
        noise_hu=(30.0, 50.0),
        kernel_sigma_mm=(0.28, 0.40),
        edge_enhance=(0.5, 0.8),
        rotation_sd_deg=2.0,
        shift_sd_mm=4.0,
        model="Synthetic CT A",
        low_res_spacing_mm=1.0,
    ),
    "B": CenterSpec(
        name="B",
        cohort="test",
        n_cases=65,
        n_recurrence=14,
        recurrence=GroupStats(
            50.79, 8.62, 5 / 14, 4 / 14, 11 / 14, 5 / 14, 2 / 14, 621.43, 683.44, 3 / 14, 6 / 14
        ),
        non_recurrence=GroupStats(
            50.49, 11.78, 13 / 51, 8 / 51, 17 / 51, 8 / 51, 1 / 51, 244.71, 189.90, 11 / 51, 12 / 51
        ),
        pixel_spacing_mm=(0.45, 0.60),
        slice_spacings_mm=(1.0, 1.25),
        noise_hu=(14.0, 24.0),
        kernel_sigma_mm=(0.50, 0.70),
        edge_enhance=(0.1, 0.3),
        rotation_sd_deg=3.5,
        shift_sd_mm=6.0,
        model="Synthetic CT B",
        low_res_spacing_mm=1.2,
    ),
}

# Imaging model (shared by both centres)
_POLYPS_RATE = (0.45, 0.78)  # P(nasal polyps | Y=0), P(... | Y=1)
_ETH_LOADING = 0.45  # λ: E | T ~ N(λ T, 1)
_EXTENT_SHIFT = 0.6  # δ: D | Y ~ N(δ Y, 1)
_T_GRID = np.linspace(-7.0, 9.0, 321)


def _probit_params(p0: float, p1: float, mu: float) -> tuple[float, float]:
    """(a0, a1) with E_T[Φ(a0 + a1 T)] = p_y for T ~ N(μ y, 1), y = 0, 1."""
    q0, q1 = float(ndtri(p0)), float(ndtri(p1))
    k = (q1 - q0) / mu
    if abs(k) >= 1.0:
        raise ValueError(
            f"group rates {p0:.3f} / {p1:.3f} need a latent shift above {abs(q1 - q0):.2f}"
        )
    a1 = k / math.sqrt(1.0 - k * k)
    a0 = q0 * math.sqrt(1.0 + a1 * a1)
    return a0, a1


@dataclass(frozen=True, slots=True)
class _Model:
    mu: float
    prevalence: float
    asthma: tuple[float, float]
    ar: tuple[float, float]
    polyps: tuple[float, float]
    eos_b0: float
    eos_b1: float
    eos_sigma: tuple[float, float]

    @classmethod
    def for_center(cls, spec: CenterSpec) -> _Model:
        mu = spec.latent_shift
        g0, g1 = spec.non_recurrence, spec.recurrence
        v0 = math.log(1.0 + (g0.eos_sd / g0.eos_mean) ** 2)
        v1 = math.log(1.0 + (g1.eos_sd / g1.eos_mean) ** 2)
        m0 = math.log(g0.eos_mean) - v0 / 2
        m1 = math.log(g1.eos_mean) - v1 / 2
        b1 = (m1 - m0) / mu
        return cls(
            mu=mu,
            prevalence=spec.prevalence,
            asthma=_probit_params(g0.asthma, g1.asthma, mu),
            ar=_probit_params(g0.allergic_rhinitis, g1.allergic_rhinitis, mu),
            polyps=_probit_params(*_POLYPS_RATE, mu),
            eos_b0=m0,
            eos_b1=b1,
            eos_sigma=(math.sqrt(v0 - b1 * b1), math.sqrt(v1 - b1 * b1)),
        )


@dataclass(slots=True)
class CaseSpec:
    """Everything about one synthetic case (clinical row, latent truth, rendering inputs)."""

    case_id: str
    center: str
    cohort: str
    index: int
    seed: int
    recurrence: int
    latent_t2: float
    clinical: dict[str, Any]
    nasal_polyps: int
    ethmoid_predominance: float
    disease_extent: float
    disease: Disease
    anatomy: Anatomy
    pose: Pose
    scanner_params: dict[str, float]
    true_probability: float = float("nan")
    probability_clinical_only: float = float("nan")
    probability_imaging_only: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)

    def lund_mackay(self) -> int:
        """Lund–Mackay score of the intended disease (0–24; OMC scored from the maxillary)."""
        score = 0
        for side in ("L", "R"):
            for region in (
                f"maxillary_{side}",
                f"ethmoid_ant_{side}",
                f"ethmoid_post_{side}",
                "frontal",
                "sphenoid",
            ):
                o = self.disease.get(region).opacification
                score += 0 if o <= 0.0 else (2 if o >= 0.95 else 1)
            score += 2 if self.disease.get(f"maxillary_{side}").opacification > 0.5 else 0
        return score

    def row(self) -> dict[str, Any]:
        """The clinical.csv row."""
        return {
            "case_id": self.case_id,
            "recurrence": self.recurrence,
            **self.clinical,
            "cohort": self.cohort,
            "center": self.center,
            "true_probability": round(self.true_probability, 6),
            "probability_clinical_only": round(self.probability_clinical_only, 6),
            "probability_imaging_only": round(self.probability_imaging_only, 6),
            "nasal_polyps": self.nasal_polyps,
            "ethmoid_predominance": round(self.ethmoid_predominance, 4),
            "disease_extent": round(self.disease_extent, 4),
            "lund_mackay": self.lund_mackay(),
            "seed": self.seed,
        }


def scanner_for(case: CaseSpec, *, low_res: bool = False) -> ScannerSettings:
    """The scanner settings of a case (its centre's ranges; 1 mm-ish sinus region if low_res)."""
    sp = case.scanner_params
    if low_res:
        spacing = CENTERS[case.center].low_res_spacing_mm
        n = round(144 / spacing)
        return ScannerSettings(
            pixel_spacing_mm=spacing,
            slice_spacing_mm=spacing,
            slice_thickness_mm=spacing,
            matrix=n,
            noise_hu=sp["noise_hu"] * 0.5,
            kernel_sigma_mm=sp["kernel_sigma_mm"],
            edge_enhance=0.0,
            z_range_head_mm=(-56.0, 48.0),
            fov_centre_head_mm=(0.0, -5.0),
            model=CENTERS[case.center].model + " low-res",
        )
    return ScannerSettings(
        pixel_spacing_mm=sp["pixel_spacing_mm"],
        slice_spacing_mm=sp["slice_spacing_mm"],
        slice_thickness_mm=sp["slice_spacing_mm"],
        matrix=512,
        noise_hu=sp["noise_hu"],
        kernel_sigma_mm=sp["kernel_sigma_mm"],
        edge_enhance=sp["edge_enhance"],
        model=CENTERS[case.center].model,
    )


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _case_rng(seed: int, center: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), ord(center), int(index)]))


def _disease_from_features(
    *, polyps: int, eth: float, extent: float, rng: np.random.Generator
) -> Disease:
    """Per-sinus disease from the imaging features plus nuisance randomness."""
    base = -0.3 + 0.9 * extent
    regions: dict[str, RegionDisease] = {}

    def opac(lg: float) -> float:
        o = float(expit(lg + rng.normal(0, 0.6)))
        return 0.0 if o < 0.05 else (1.0 if o > 0.93 else o)

    for side in ("L", "R"):
        o_ant = opac(base + 1.1 * eth)
        o_post = opac(base + 1.1 * eth - 0.5)
        o_max = opac(base - 0.9 * eth - 0.3)
        for name, o in ((f"ethmoid_ant_{side}", o_ant), (f"ethmoid_post_{side}", o_post)):
            regions[name] = RegionDisease(
                opacification=o, pattern="none" if o == 0 else ("complete" if o == 1 else "mucosal")
            )
        if o_max == 0:
            regions[f"maxillary_{side}"] = RegionDisease()
        elif o_max == 1:
            regions[f"maxillary_{side}"] = RegionDisease(
                opacification=1.0, pattern="complete", hyperdense_foci=bool(rng.uniform() < 0.15)
            )
        else:
            u = rng.uniform()
            if u < 0.12:
                pat = "cyst"
            elif u < 0.2:
                pat = "air_fluid"
            elif polyps and u < 0.55:
                pat = "polypoid"
            else:
                pat = "mucosal"
            regions[f"maxillary_{side}"] = RegionDisease(
                opacification=o_max,
                pattern=pat,
                polyps=int(rng.integers(1, 3)) if pat == "polypoid" else 0,
            )
    for name, lg in (("frontal", base + 0.7 * eth - 1.0), ("sphenoid", base + 0.5 * eth - 1.4)):
        o = opac(lg)
        pat = (
            "none"
            if o == 0
            else ("complete" if o == 1 else ("air_fluid" if rng.uniform() < 0.08 else "mucosal"))
        )
        regions[name] = RegionDisease(opacification=o, pattern=pat)
    if polyps:
        regions["nasal_cavity"] = RegionDisease(
            opacification=0.2, pattern="polypoid", polyps=int(rng.integers(2, 7))
        )
    return Disease(regions=regions, lesion_hu=float(rng.uniform(18.0, 50.0)))


def sample_cohort(
    *,
    n_cases: int,
    seed: int,
    center: str,
    n_recurrence: int | None = None,
    first_index: int = 1,
) -> list[CaseSpec]:
    """Sample a cohort of one centre (table and rendering inputs; no images).

    Parameters
    ----------
    n_cases:
        Number of patients.
    seed:
        Cohort seed; case ``i`` of centre ``c`` uses its own stream, so the same seed gives the
        same cases.
    center:
        ``"A"`` (training centre) or ``"B"`` (test centre).
    n_recurrence:
        Number of recurrences; default the paper's proportion for that centre.
    first_index:
        Number of the first case (case ids ``A0001``...).
    """
    if center not in CENTERS:
        raise ValueError(f"center must be one of {sorted(CENTERS)}, got {center!r}")
    if n_cases < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases}")
    spec = CENTERS[center]
    model = _Model.for_center(spec)
    if n_recurrence is None:
        n_recurrence = round(n_cases * spec.prevalence)
    if not (0 <= n_recurrence <= n_cases):
        raise ValueError(f"n_recurrence must be in [0, {n_cases}], got {n_recurrence}")
    order_rng = np.random.default_rng(np.random.SeedSequence([int(seed), ord(center), 0]))
    outcome = np.zeros(n_cases, int)
    outcome[:n_recurrence] = 1
    order_rng.shuffle(outcome)

    cases: list[CaseSpec] = []
    for n, y in enumerate(outcome):
        index = first_index + n
        rng = _case_rng(seed, center, index)
        g = spec.recurrence if y else spec.non_recurrence
        t = float(rng.normal(model.mu * y, 1.0))
        asthma = int(rng.uniform() < ndtr(model.asthma[0] + model.asthma[1] * t))
        ar = int(rng.uniform() < ndtr(model.ar[0] + model.ar[1] * t))
        log_eos = model.eos_b0 + model.eos_b1 * t + model.eos_sigma[y] * rng.normal()
        clinical = {
            "asthma": asthma,
            "allergic_rhinitis": ar,
            # capped at the app's accepted maximum (the log-normal tail reaches 15,000
            # cells/µL about once in a few thousand cases, which `sinusapp evaluate` refuses);
            # the cap draws no random numbers, so every other value of every case is unchanged
            "eosinophils_per_ul": float(min(round(math.exp(log_eos)), EOSINOPHILS_MAX_PER_UL)),
            "age": int(np.clip(round(rng.normal(g.age_mean, g.age_sd)), 18, 85)),
            "sex": "F" if rng.uniform() < g.female else "M",
            "hypertension": int(rng.uniform() < g.hypertension),
            "diabetes": int(rng.uniform() < g.diabetes),
            "smoking": int(rng.uniform() < g.smoking),
            "drinking": int(rng.uniform() < g.drinking),
        }
        polyps = int(rng.uniform() < ndtr(model.polyps[0] + model.polyps[1] * t))
        eth = float(rng.normal(_ETH_LOADING * t, 1.0))
        extent = float(rng.normal(_EXTENT_SHIFT * y, 1.0))
        disease = _disease_from_features(polyps=polyps, eth=eth, extent=extent, rng=rng)
        anatomy = Anatomy.sample(rng)
        rot = tuple(float(v) for v in rng.normal(0, spec.rotation_sd_deg, 3))
        shift = tuple(float(v) for v in rng.normal(0, spec.shift_sd_mm, 3))
        scanner_params = {
            "pixel_spacing_mm": round(float(rng.uniform(*spec.pixel_spacing_mm)), 3),
            "slice_spacing_mm": float(rng.choice(spec.slice_spacings_mm)),
            "noise_hu": float(rng.uniform(*spec.noise_hu)),
            "kernel_sigma_mm": float(rng.uniform(*spec.kernel_sigma_mm)),
            "edge_enhance": float(rng.uniform(*spec.edge_enhance)),
        }
        cases.append(
            CaseSpec(
                case_id=f"{center}{index:04d}",
                center=center,
                cohort=spec.cohort,
                index=index,
                seed=int(rng.integers(0, 2**31 - 1)),
                recurrence=int(y),
                latent_t2=t,
                clinical=clinical,
                nasal_polyps=polyps,
                ethmoid_predominance=eth,
                disease_extent=extent,
                disease=disease,
                anatomy=anatomy,
                pose=Pose(rotation_deg=rot, shift_mm=shift),  # type: ignore[arg-type]
                scanner_params=scanner_params,
            )
        )
    _attach_probabilities(cases, model=model, spec=spec)
    return cases


# --------------------------------------------------------------------------------------------
# Exact posterior probabilities
# --------------------------------------------------------------------------------------------


def _bern(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(x[:, None] == 1, p, 1.0 - p)


def _attach_probabilities(cases: list[CaseSpec], *, model: _Model, spec: CenterSpec) -> None:
    """P(Y=1 | features) for all / clinical-only / imaging-only features, by quadrature over T."""
    n = len(cases)
    tg = _T_GRID[None, :]
    dt = float(_T_GRID[1] - _T_GRID[0])
    a = np.array([c.clinical["asthma"] for c in cases])
    r = np.array([c.clinical["allergic_rhinitis"] for c in cases])
    le = np.log(np.maximum([c.clinical["eosinophils_per_ul"] for c in cases], 1.0))
    pol = np.array([c.nasal_polyps for c in cases])
    eth = np.array([c.ethmoid_predominance for c in cases])
    ext = np.array([c.disease_extent for c in cases])

    l_asthma = _bern(ndtr(model.asthma[0] + model.asthma[1] * tg), a)
    l_ar = _bern(ndtr(model.ar[0] + model.ar[1] * tg), r)
    l_pol = _bern(ndtr(model.polyps[0] + model.polyps[1] * tg), pol)
    l_eth = norm.pdf(eth[:, None], loc=_ETH_LOADING * tg, scale=1.0)
    clin_t = l_asthma * l_ar
    img_t = l_pol * l_eth

    def group_terms(y: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = spec.recurrence if y else spec.non_recurrence
        prior_t = norm.pdf(tg, loc=model.mu * y, scale=1.0) * dt
        l_eos = norm.pdf(
            le[:, None], loc=model.eos_b0 + model.eos_b1 * tg, scale=model.eos_sigma[y]
        )
        direct = np.ones(n)
        for key, rate in (
            ("hypertension", g.hypertension),
            ("diabetes", g.diabetes),
            ("smoking", g.smoking),
            ("drinking", g.drinking),
        ):
            x = np.array([c.clinical[key] for c in cases])
            direct *= np.where(x == 1, rate, 1 - rate)
        female = np.array([c.clinical["sex"] == "F" for c in cases])
        direct *= np.where(female, g.female, 1 - g.female)
        direct *= norm.pdf([c.clinical["age"] for c in cases], loc=g.age_mean, scale=g.age_sd)
        l_ext = norm.pdf(ext, loc=_EXTENT_SHIFT * y, scale=1.0)
        both = direct * l_ext * np.sum(prior_t * clin_t * l_eos * img_t, axis=1)
        clin = direct * np.sum(prior_t * clin_t * l_eos, axis=1)
        img = l_ext * np.sum(prior_t * img_t, axis=1)
        return both, clin, img

    l0, l1 = group_terms(0), group_terms(1)
    pi = model.prevalence
    out = []
    for k in range(3):
        num = pi * l1[k]
        out.append(num / (num + (1 - pi) * l0[k]))
    for c, pb, pc, pm in zip(cases, out[0], out[1], out[2], strict=True):
        c.true_probability = float(pb)
        c.probability_clinical_only = float(pc)
        c.probability_imaging_only = float(pm)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (Mann–Whitney U with average ranks for ties); NaN when a class is empty."""
    yb = np.asarray(y).astype(bool)
    s = np.asarray(score, float)
    n_pos, n_neg = int(yb.sum()), int((~yb).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[yb].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def oracle_aucs(cases: list[CaseSpec]) -> dict[str, float]:
    """AUC of the true probability, and of the clinical-only and imaging-only probabilities."""
    y = np.array([c.recurrence for c in cases])
    return {
        "oracle_auc": auc(y, np.array([c.true_probability for c in cases])),
        "clinical_only_auc": auc(y, np.array([c.probability_clinical_only for c in cases])),
        "imaging_only_auc": auc(y, np.array([c.probability_imaging_only for c in cases])),
    }
