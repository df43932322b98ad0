"""Before/after on a real file, through the CLI: the picture in the README's "Your own data".

    python examples/real_data_figure.py [OUT_PNG]

Deconvolves RedLionfish's test volume (``shared/data/real/redlionfish_rfi_psf``, Apache-2.0:
27 cubes of 2x2x2 voxels blurred with the measured, aberrated widefield PSF
``PSF_RFI_8bit.tif`` (61 planes, larger than needed, 8-bit, with a halo) and Poisson
noise) with ``fijidecon deconvolve richardson-lucy`` and ``wiener`` as a user would, then
draws the input and both results (an XY plane through a row of cubes and an XZ plane)
with the same grey scale per column and a bar of 10 voxels.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real" / "redlionfish_rfi_psf"


def _run(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "fijidecon.cli", *args], check=True)


def main(out_png: str = str(HERE.parent / "docs" / "images" / "real_data_before_after.png")) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile

    image, psf = REAL / "gendata_psfconv_poiss.tif", REAL / "PSF_RFI_8bit.tif"
    with tempfile.TemporaryDirectory() as tmp:
        _run(["deconvolve", "richardson-lucy", str(image), str(psf), "--iterations", "30", "-o", f"{tmp}/rl.tif"])
        _run(["deconvolve", "wiener", str(image), str(psf), "-o", f"{tmp}/wiener.tif"])
        panels = {"input (Poisson, 8-bit)": tifffile.imread(image).astype(np.float32),
                  "Richardson-Lucy, 30 it.": tifffile.imread(f"{tmp}/rl.tif"),
                  "Wiener (default rule)": tifffile.imread(f"{tmp}/wiener.tif")}
    z, y = 72, 72  # a plane and a row through the middle layer of cubes (at 5 + 67 = 72)
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.4), dpi=110)
    for col, (title, vol) in enumerate(panels.items()):
        for row, (plane, label) in enumerate(((vol[z], "XY (z = 72)"), (vol[:, y, :], "XZ (y = 72)"))):
            ax = axes[row, col]
            ax.imshow(plane, cmap="gray", vmin=0, vmax=float(np.percentile(vol, 99.995)), interpolation="nearest")
            ax.plot([8, 18], [plane.shape[0] - 8] * 2, color="yellow", lw=3)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=11)
            if col == 0:
                ax.set_ylabel(label, fontsize=10)
    fig.suptitle("RedLionfish test volume (160³) with its measured 61×32×32 PSF, via the fijidecon CLI "
                 "(bar: 10 voxels)", fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
