"""R itself as the reference: run R's survival and cmprsk on data written by a test, read back what R computed.

Every call runs one Rscript process over all the datasets it is given (R's start-up is the larger cost). R comes
from Debian's packages (`r-base-core`, `r-cran-survival`, `r-cran-cmprsk`), which `scripts/setup.sh` installs
where it can; without R the differential tests are skipped with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

RSCRIPT = shutil.which("Rscript")
PRELUDE = """
suppressPackageStartupMessages({library(survival)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
out <- file(args[2], "w")
emit <- function(id, what, values) {
  values <- as.numeric(values)
  if (length(values)) writeLines(paste(id, what, seq_along(values) - 1L, format(values, digits = 17), sep = ","), out)
}
"""
EPILOGUE = "\nclose(out)\n"


def require_r(*packages: str) -> None:
    """Skip, saying why, where R or one of its packages is not installed."""
    if RSCRIPT is None:
        pytest.skip("R is not installed (apt-get install r-base-core r-cran-survival r-cran-cmprsk)")
    for package in packages:
        found = subprocess.run([RSCRIPT, "-e", f"quit(status = !requireNamespace('{package}', quietly = TRUE))"],
                               capture_output=True, timeout=120)
        if found.returncode != 0:
            pytest.skip(f"R's {package} package is not installed (Debian: r-cran-{package})")


def run_r(body: str, data: pd.DataFrame, work: Path) -> dict[tuple[int, str], np.ndarray]:
    """Run `body` (R code over the data frame `d`, calling `emit(id, what, values)`), return {(id, what): values}."""
    assert RSCRIPT is not None
    data.to_csv(work / "data.csv", index=False)
    (work / "script.R").write_text(PRELUDE + body + EPILOGUE, encoding="utf-8")
    done = subprocess.run([RSCRIPT, str(work / "script.R"), str(work / "data.csv"), str(work / "out.csv")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    found: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    for line in (work / "out.csv").read_text(encoding="utf-8").splitlines():
        dataset, what, index, value = line.split(",")
        found[(int(dataset), what)][int(index)] = float("nan") if value.strip() == "NA" else float(value)
    return {key: np.array([values[i] for i in sorted(values)]) for key, values in found.items()}
