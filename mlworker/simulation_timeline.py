"""A simulation run's timeline: what the models see in its mock images, snapshot by snapshot and
camera by camera, beside what the simulation's metadata say happened (the seed's figure)."""

import csv
import io

import numpy as np

from catalog.models import MockImage, ModelTask, ModelVersion, Prediction, SimulationRun
from mlworker.ml.phenomena import RECENT_MERGER_DA

STRUCTURE = (
    ("p_bulge", "P(bulge)"),
    ("p_disk", "P(disk)"),
    ("p_bulge_disk", "P(bulge+disk)"),
    ("sersic_n", "Sersic n"),
    ("r_e_arcsec", 'r_e (")'),
)
PHENOMENA = (
    ("p_pre", "P(pre-compaction)"),
    ("p_blue_nugget", "P(blue nugget)"),
    ("p_post", "P(post-compaction)"),
    ("p_recent_merger", "P(recent merger)"),
)
META = (
    ("stellar_mass_msun", "M* [Msun]"),
    ("gas_mass_msun", "M_gas [Msun]"),
    ("sfr_msun_per_yr", "SFR [Msun/yr]"),
    ("gas_inflow_rate_msun_per_yr", "inflow [Msun/yr]"),
    ("gas_outflow_rate_msun_per_yr", "outflow [Msun/yr]"),
)


def promoted(task: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(task=task, is_promoted=True, status=ModelVersion.Status.READY).first()


def run_timeline(*, run: SimulationRun, filter_name: str | None = None) -> dict:
    """Snapshots (metadata, truth), cameras, and per (snapshot, camera) the promoted emulator's
    and phenomena model's outputs as arrays (n_snapshots, n_cameras), NaN where missing."""
    snapshots = list(run.snapshots.order_by("scale_factor"))
    images = MockImage.objects.filter(snapshot__run=run)
    if filter_name is None:
        filter_name = images.values_list("filter_name", flat=True).order_by("filter_name").first()
    images = images.filter(filter_name=filter_name)
    cameras = sorted(set(images.values_list("camera", flat=True)))
    row_of = {s.pk: i for i, s in enumerate(snapshots)}
    col_of = {c: j for j, c in enumerate(cameras)}
    cell = {pk: (row_of[s], col_of[c]) for pk, s, c in images.values_list("pk", "snapshot_id", "camera")}
    mergers = list(run.mergers.order_by("scale_factor"))
    a = np.array([s.scale_factor for s in snapshots])
    out = {
        "run": run,
        "filter": filter_name,
        "snapshots": snapshots,
        "cameras": cameras,
        "scale_factor": a,
        "redshift": np.array([s.redshift for s in snapshots]),
        "phase": [s.compaction_phase for s in snapshots],
        "recent_merger": np.array(
            [any(0 <= s.scale_factor - m.scale_factor < RECENT_MERGER_DA for m in mergers) for s in snapshots]
        ),
        "mergers": mergers,
        "meta": {k: np.array([getattr(s, k) for s in snapshots], dtype=float) for k, _ in META},
        "versions": {},
        "values": {},
    }
    for task, names in ((ModelTask.EMULATOR, STRUCTURE), (ModelTask.PHENOMENA, PHENOMENA)):
        version = promoted(task)
        if version is None:
            continue
        grids = {k: np.full((len(snapshots), len(cameras)), np.nan) for k, _ in names}
        found = 0
        for image_id, values in Prediction.objects.filter(
            model_version=version, mock_image_id__in=list(cell)
        ).values_list("mock_image_id", "values"):
            i, j = cell[image_id]
            found += 1
            for k, _ in names:
                v = values.get(k)
                if v is not None:
                    grids[k][i, j] = float(v)
        if found:
            out["versions"][task] = version
            out["values"].update(grids)
    return out


def _median(grid: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(grid, axis=1)


def timeline_png(timeline: dict) -> bytes:
    """The model panels (one thin line per camera, the median over cameras heavy; phenomena
    with the truth), then the metadata panels; blue-nugget phase shaded, mergers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = timeline["redshift"]
    values = timeline["values"]
    model_panels = [(k, label) for k, label in STRUCTURE if k in values]
    phenomena = [(k, label) for k, label in PHENOMENA if k in values]
    n_panels = len(model_panels) + (1 if phenomena else 0) + 3
    fig, axes = plt.subplots(n_panels, 1, figsize=(8.5, 1.9 * n_panels), sharex=True, squeeze=False)
    axes = axes[:, 0]
    nugget = np.array([p == "blue_nugget" for p in timeline["phase"]])

    def decorate(ax):
        if nugget.any():
            ax.axvspan(z[nugget].max() + 0.02, z[nugget].min() - 0.02, color="tab:blue", alpha=0.12, lw=0)
        for m in timeline["mergers"]:
            ax.axvline(
                1 / m.scale_factor - 1,
                color="tab:red",
                lw=1.2 if m.kind == "major" else 0.6,
                ls="-" if m.kind == "major" else "--",
                alpha=0.7,
            )

    k = 0
    for key, label in model_panels:
        ax = axes[k]
        grid = values[key]
        for j in range(grid.shape[1]):
            ax.plot(z, grid[:, j], color="0.5", lw=0.5, alpha=0.5)
        ax.plot(z, _median(grid), color="k", lw=2.2, label="median over cameras")
        ax.set_ylabel(label)
        if key.startswith("p_"):
            ax.set_ylim(-0.02, 1.02)
        decorate(ax)
        k += 1
    if phenomena:
        ax = axes[k]
        colours = {
            "p_pre": "tab:green",
            "p_blue_nugget": "tab:blue",
            "p_post": "tab:orange",
            "p_recent_merger": "tab:red",
        }
        for key, label in phenomena:
            ax.plot(z, _median(values[key]), color=colours[key], lw=2, label=f"{label} (median)")
        truth_nugget = nugget.astype(float)
        ax.step(z, truth_nugget, where="mid", color="tab:blue", lw=1, ls=":", label="true blue nugget")
        ax.step(
            z,
            timeline["recent_merger"].astype(float),
            where="mid",
            color="tab:red",
            lw=1,
            ls=":",
            label="true recent merger",
        )
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("phenomena")
        ax.legend(fontsize=6, ncol=3, loc="upper left")
        decorate(ax)
        k += 1
    meta = timeline["meta"]
    ax = axes[k]
    ax.semilogy(z, meta["stellar_mass_msun"], color="k", label="M*")
    ax.semilogy(z, meta["gas_mass_msun"], color="tab:cyan", label="M_gas")
    ax.set_ylabel("mass [Msun]")
    ax.legend(fontsize=7, loc="upper left")
    decorate(ax)
    ax = axes[k + 1]
    ax.semilogy(z, meta["sfr_msun_per_yr"], color="tab:purple", label="SFR")
    ax.semilogy(z, meta["gas_inflow_rate_msun_per_yr"], color="tab:green", label="inflow")
    ax.semilogy(z, meta["gas_outflow_rate_msun_per_yr"], color="tab:olive", label="outflow")
    ax.set_ylabel("Msun / yr")
    ax.legend(fontsize=7, loc="upper left")
    decorate(ax)
    ax = axes[k + 2]
    codes = {"pre": 0, "blue_nugget": 1, "post": 2}
    ax.step(z, [codes.get(p, np.nan) for p in timeline["phase"]], where="mid", color="tab:blue")
    ax.set_yticks([0, 1, 2], ["pre", "blue nugget", "post"])
    ax.set_ylabel("compaction")
    decorate(ax)
    ax.set_xlabel("redshift")
    axes[0].invert_xaxis()  # shared: time runs to the right
    versions = ", ".join(str(v) for v in timeline["versions"].values()) or "no model has seen this run yet"
    axes[0].set_title(
        f"{timeline['run'].name} ({timeline['filter']}, {len(timeline['cameras'])} cameras): {versions}", fontsize=9
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def timeline_csv(timeline: dict) -> str:
    """The plotted numbers: a row per (snapshot, camera) and a "median" row per snapshot."""
    value_keys = [k for k, _ in STRUCTURE + PHENOMENA if k in timeline["values"]]
    meta_keys = [k for k, _ in META]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["run", "scale_factor", "redshift", "camera", *value_keys, "compaction_phase", "recent_merger", *meta_keys]
    )
    run = timeline["run"].name
    medians = {k: _median(timeline["values"][k]) for k in value_keys}
    for i, (a, z) in enumerate(zip(timeline["scale_factor"], timeline["redshift"], strict=True)):
        facts = [
            timeline["phase"][i],
            bool(timeline["recent_merger"][i]),
            *(f"{timeline['meta'][k][i]:.6g}" for k in meta_keys),
        ]
        for j, camera in enumerate(timeline["cameras"]):
            cells = [_cell(timeline["values"][k][i, j]) for k in value_keys]
            writer.writerow([run, f"{a:.4f}", f"{z:.4f}", camera, *cells, *facts])
        writer.writerow([run, f"{a:.4f}", f"{z:.4f}", "median", *(_cell(medians[k][i]) for k in value_keys), *facts])
    return buffer.getvalue()


def _cell(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.5g}"
