"""Galaxy catalogs (CSV, FITS table, VOTable, ECSV) read and validated column-wise (no Django).

Columns are found by common names (``id``, ``ra``, ``dec``, ``mag``...) or by an explicit
mapping; values are checked with numpy over the whole table at once, and every problem is
reported with its file and row (the first data row is row 1).
"""

from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle
from astropy.table import Table

from catalog.errors import IngestError

FIELDS = (
    "source_id",
    "ra",
    "dec",
    "mag",
    "mag_err",
    "z_spec",
    "z_spec_err",
    "z_phot",
    "z_phot_err",
    "log_stellar_mass",
)
NUMERIC_FIELDS = FIELDS[1:]

ALIASES: dict[str, tuple[str, ...]] = {
    "source_id": ("source_id", "id", "sourceid", "objid", "obj_id", "object_id", "number", "seqnr"),
    "ra": ("ra", "ra_deg", "radeg", "raj2000", "ra_j2000", "alpha_j2000", "ra_icrs", "alpha"),
    "dec": ("dec", "dec_deg", "decdeg", "dej2000", "dec_j2000", "delta_j2000", "dec_icrs", "de_icrs", "delta"),
    "mag": ("mag", "magnitude", "mag_auto", "mag_best", "mag_ab"),
    "mag_err": ("mag_err", "magerr", "e_mag", "mag_error", "magerr_auto", "emag"),
    "z_spec": ("z_spec", "zspec", "spec_z", "specz", "z_sp"),
    "z_spec_err": ("z_spec_err", "zspec_err", "e_zspec", "spec_z_err"),
    "z_phot": ("z_phot", "zphot", "photo_z", "photoz", "z_ph", "z_peak"),
    "z_phot_err": ("z_phot_err", "zphot_err", "e_zphot", "photo_z_err", "z_ph_err"),
    "log_stellar_mass": ("log_stellar_mass", "logmstar", "log_mstar", "lmass", "logm", "log_mass"),
}
LINEAR_MASS_ALIASES = ("stellar_mass", "mstar", "mass")
# Catalogs mark missing values with sentinels; these are read as "no value".
MAG_SENTINEL_ABS = 90.0
REDSHIFT_SENTINEL_MAX = -0.5
MAX_SOURCE_ID_LENGTH = 64


@dataclass
class CatalogColumns:
    """A validated catalog: equal-length arrays, NaN where a value is missing."""

    path: Path
    source_id: np.ndarray  # str (n,)
    columns: dict[str, np.ndarray]  # float64 (n,) for each numeric field
    properties: list[dict] | None = None
    notices: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.source_id.size


def _band_aliases(band: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not band:
        return (), ()
    b = band.lower()
    return (f"mag_{b}", f"{b}_mag", f"{b}mag", b), (
        f"magerr_{b}",
        f"mag_err_{b}",
        f"{b}_magerr",
        f"{b}_mag_err",
        f"e_{b}",
    )


def read_table(path: Path) -> Table:
    """Any table astropy reads (CSV, ECSV, FITS, VOTable), with errors naming the file."""
    suffix = "".join(path.suffixes).lower()
    fmt = None
    if suffix.endswith(".csv") and not suffix.endswith(".ecsv"):
        fmt = "ascii.csv"
    elif suffix.endswith((".xml", ".vot", ".votable")):
        fmt = "votable"
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except FileNotFoundError:
        raise IngestError([f"{path}: file not found"]) from None
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for unreadable input
        raise IngestError([f"{path}: unreadable table ({type(exc).__name__}: {exc})"]) from None
    if len(table) == 0:
        raise IngestError([f"{path}: the table has no rows"])
    return table


def resolve_columns(table: Table, mapping: dict[str, str], band: str | None, path: Path) -> dict[str, str]:
    """Which table column feeds which field; explicit mapping first, then known names."""
    lower = {name.lower(): name for name in table.colnames}
    problems = []
    resolved: dict[str, str] = {}
    for fld, column in mapping.items():
        if fld not in FIELDS:
            problems.append(f"{path}: --map {fld}={column}: unknown field (known: {', '.join(FIELDS)})")
        elif column.lower() not in lower:
            problems.append(
                f"{path}: --map {fld}={column}: no column {column!r} (columns: {', '.join(table.colnames)})"
            )
        else:
            resolved[fld] = lower[column.lower()]
    mag_aliases, err_aliases = _band_aliases(band)
    for fld in FIELDS:
        if fld in resolved:
            continue
        candidates = ALIASES[fld] + (mag_aliases if fld == "mag" else err_aliases if fld == "mag_err" else ())
        if fld == "log_stellar_mass":
            candidates += LINEAR_MASS_ALIASES
        hit = next((lower[c] for c in candidates if c in lower), None)
        if hit is not None:
            resolved[fld] = hit
    for required in ("source_id", "ra", "dec"):
        if required not in resolved:
            problems.append(
                f"{path}: no column for {required} (looked for {', '.join(ALIASES[required])}; "
                f"columns are {', '.join(table.colnames)}); use --map {required}=COLUMN"
            )
    if problems:
        raise IngestError(problems)
    return resolved


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask) + 1


def _float_column(table: Table, name: str) -> np.ndarray:
    column = table[name]
    if hasattr(column, "mask") and np.any(column.mask):
        column = column.filled(np.nan) if column.dtype.kind == "f" else column.astype(float).filled(np.nan)
    return np.asarray(column, dtype=np.float64)


def _angle_column(table: Table, name: str, kind: str, path: Path, problems: list[str]) -> np.ndarray:
    column = table[name]
    unit = column.unit
    if column.dtype.kind in "US":
        # Sexagesimal strings: RA in hours, Dec in degrees.
        try:
            return Angle(np.asarray(column), unit=u.hourangle if kind == "ra" else u.deg).deg
        except (ValueError, u.UnitsError) as exc:
            problems.append(f"{path}: column {name}: cannot parse angles ({exc})")
            return np.full(len(column), np.nan)
    values = _float_column(table, name)
    if unit is None:
        return values
    try:
        return (values * unit).to_value(u.deg)
    except u.UnitsError:
        problems.append(f"{path}: column {name} has unit {unit}, not an angle (wrong units)")
        return values


def _check_unit(table: Table, name: str, kind: str, path: Path, problems: list[str]) -> None:
    """Magnitudes must carry a magnitude unit (or none); redshifts none (or "redshift")."""
    unit = table[name].unit
    if unit is None or unit == u.dimensionless_unscaled:
        return
    text = str(unit).lower()
    ok = isinstance(unit, u.MagUnit | u.LogUnit) or "mag" in text if kind == "mag" else text in ("redshift", "")
    if not ok:
        problems.append(f"{path}: column {name} has unit {unit} (wrong units for a {kind})")


def _source_ids(table: Table, name: str) -> np.ndarray:
    column = table[name]
    if column.dtype.kind in "iu":
        values = np.asarray(column).astype(str)
    elif column.dtype.kind == "f":
        raw = np.asarray(column, dtype=np.float64)
        whole = np.isfinite(raw) & (raw == np.round(raw))
        values = np.where(whole, np.char.mod("%d", np.where(whole, raw, 0).astype(np.int64)), raw.astype(str))
        values = np.where(np.isfinite(raw), values, "")
    else:
        if hasattr(column, "mask") and np.any(column.mask):
            column = column.filled("")
        values = np.char.strip(np.asarray(column).astype(str))
    return np.asarray(values, dtype=str)


def validate(
    table: Table,
    path: Path,
    *,
    mapping: dict[str, str] | None = None,
    band: str | None = None,
    keep_columns: list[str] | None = None,
) -> CatalogColumns:
    """Columns of a galaxy catalog, checked; raises IngestError listing every problem."""
    resolved = resolve_columns(table, mapping or {}, band, path)
    problems: list[str] = []
    notices: list[str] = []

    ids = _source_ids(table, resolved["source_id"])
    empty = ids == ""
    if empty.any():
        problems += [f"{path} row {r}: empty {resolved['source_id']}" for r in _rows(empty)[:20]]
    too_long = np.char.str_len(ids) > MAX_SOURCE_ID_LENGTH
    if too_long.any():
        problems += [
            f"{path} row {r}: source id longer than {MAX_SOURCE_ID_LENGTH} characters" for r in _rows(too_long)[:20]
        ]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    dup = np.flatnonzero((sorted_ids[1:] == sorted_ids[:-1]) & (sorted_ids[1:] != ""))
    for k in dup[:20]:
        problems.append(
            f"{path} rows {order[k] + 1} and {order[k + 1] + 1}: duplicate source id {str(sorted_ids[k])!r}"
        )

    cols: dict[str, np.ndarray] = {}
    cols["ra"] = _angle_column(table, resolved["ra"], "ra", path, problems)
    cols["dec"] = _angle_column(table, resolved["dec"], "dec", path, problems)
    for label, values, lo, hi, hi_open in (
        ("ra", cols["ra"], 0.0, 360.0, True),
        ("dec", cols["dec"], -90.0, 90.0, False),
    ):
        finite = np.isfinite(values)
        out = ~finite | (values < lo) | ((values >= hi) if hi_open else (values > hi))
        for r in _rows(out)[:20]:
            v = values[r - 1]
            why = (
                "missing or NaN"
                if not np.isfinite(v)
                else f"{float(v)!r} outside [{lo:g}, {hi:g}{')' if hi_open else ']'}"
            )
            problems.append(f"{path} row {r} (id {str(ids[r - 1])!r}): {label} {why}")
        if out.sum() > 20:
            problems.append(f"{path}: {out.sum()} rows in all with bad {label}")

    n = len(table)
    for fld in ("mag", "mag_err", "z_spec", "z_spec_err", "z_phot", "z_phot_err", "log_stellar_mass"):
        name = resolved.get(fld)
        if name is None:
            cols[fld] = np.full(n, np.nan)
            continue
        if table[name].dtype.kind not in "iuf":
            problems.append(f"{path}: column {name} ({fld}) is not numeric")
            cols[fld] = np.full(n, np.nan)
            continue
        values = _float_column(table, name)
        if fld in ("mag", "mag_err"):
            _check_unit(table, name, "mag", path, problems)
            sentinel = np.abs(values) >= MAG_SENTINEL_ABS
        elif fld.startswith("z_"):
            _check_unit(table, name, "redshift", path, problems)
            sentinel = values <= REDSHIFT_SENTINEL_MAX
        else:
            unit = table[name].unit
            if unit is not None and unit.is_equivalent(u.Msun):
                values = np.log10((values * unit).to_value(u.Msun))
                notices.append(f"{name}: linear masses converted to log10(M/Msun)")
            elif unit is not None and not (unit == u.dimensionless_unscaled or "dex" in str(unit)):
                problems.append(f"{path}: column {name} has unit {unit} (wrong units for a stellar mass)")
            elif name.lower() in LINEAR_MASS_ALIASES and np.nanmedian(values) > 20:
                problems.append(
                    f"{path}: column {name} looks like linear masses; give it a unit (solMass) "
                    "or map a log10 column with --map log_stellar_mass=COLUMN"
                )
            sentinel = values <= 0
        n_sentinel = int((sentinel & np.isfinite(values)).sum())
        if n_sentinel:
            notices.append(f"{name}: {n_sentinel} sentinel value(s) read as missing")
        values = np.where(sentinel, np.nan, values)
        cols[fld] = values

    def check_range(fld: str, lo: float, hi: float) -> None:
        values = cols[fld]
        out = np.isfinite(values) & ((values < lo) | (values >= hi))
        for r in _rows(out)[:20]:
            problems.append(
                f"{path} row {r} (id {str(ids[r - 1])!r}): {fld} {float(values[r - 1])!r} outside [{lo}, {hi})"
            )

    check_range("mag", -5.0, 40.0)
    check_range("z_spec", -0.01, 15.0)
    check_range("z_phot", 0.0, 15.0)
    check_range("log_stellar_mass", 0.0, 14.0)
    for fld in ("mag_err", "z_spec_err", "z_phot_err"):
        check_range(fld, 0.0, np.inf)

    properties = None
    if keep_columns:
        missing = [c for c in keep_columns if c not in table.colnames]
        if missing:
            problems.append(f"{path}: --keep-columns names missing column(s): {', '.join(missing)}")
        else:
            kept = {c: np.asarray(table[c]).tolist() for c in keep_columns}
            properties = [
                {
                    c: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for c, v in zip(keep_columns, row, strict=True)
                }
                for row in zip(*kept.values(), strict=True)
            ]
    if problems:
        raise IngestError(problems)
    ignored = sorted(set(table.colnames) - set(resolved.values()) - set(keep_columns or []))
    if ignored:
        notices.append(f"columns not ingested: {', '.join(ignored)} (keep them with --keep-columns)")
    return CatalogColumns(
        path=path,
        source_id=ids,
        columns=cols,
        properties=properties,
        notices=notices,
        mapping={fld: col for fld, col in resolved.items()},
    )


def read_sightline_table(path, extra: tuple[str, ...] = (), what: str = "table") -> list[tuple]:
    """Rows (plate, mjd, fiber, *extra) of a table naming sightlines, any format astropy
    reads; ApplicationError (nothing else) for a missing file, missing columns or bad values."""
    from catalog.errors import ApplicationError

    path = Path(path)
    if not path.exists():
        raise ApplicationError(f"no {what} at {path}")
    try:
        table = read_table(path)
    except IngestError as exc:
        raise ApplicationError(f"cannot read the {what}: {exc.message}") from None
    names = {n.lower(): n for n in table.colnames}
    wanted = ("plate", "mjd", "fiber", *extra)
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ApplicationError(f"the {what} {path.name} lacks the columns {missing} (it needs {', '.join(wanted)})")
    try:
        return [
            (int(r[names["plate"]]), int(r[names["mjd"]]), int(r[names["fiber"]]), *(float(r[names[c]]) for c in extra))
            for r in table
        ]
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"the {what} {path.name} has a non-numeric value: {exc}") from None
