"""fijidecon from a notebook: start ImageJ from Python, convert both ways, run commands.

Run it as a script (``python examples/notebook.py``) or cell by cell (``# %%`` cells,
e.g. in Jupyter/VS Code).  It needs Java 11+ and a display (on a server: ``xvfb-run -a
python examples/notebook.py``).  The first run downloads about 5 MB of pinned jars from
Maven Central (ImageJ 1.54p, scijava-common, parsington, ImgLib2); later runs work
offline.

What it does
------------
1. starts the JVM and ImageJ 1.x from Python (:mod:`fijidecon.fiji.runtime`);
2. makes a synthetic 3D bead image in numpy and sends it to ImageJ as a calibrated
   ``ImagePlus`` (numpy → ImageJ);
3. installs fijidecon's ImageJ commands and runs the ported *Diffraction PSF 3D* and
   *Iterative Deconvolve 3D* on ImageJ images through an ImageJ macro, exactly as a Fiji
   user's macro would -- the macro options come from the commands' one description;
4. brings the result back (ImageJ → numpy, and to xarray) and checks that the
   deconvolution sharpened the beads;
5. shows ImgLib2's zero-copy view of a numpy array;
6. shows the result window (``--screenshot out.png`` saves a picture of the screen).

Options: ``--screenshot PATH``, ``--iterations N``, ``--keep-open`` (wait for Enter
before quitting).
"""

# %% imports and options
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fijidecon.calibration import Calibration
from fijidecon.commands import get_command
from fijidecon.fiji import convert, runtime
from fijidecon.psf import diffraction_psf_3d

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--screenshot", help="save a PNG of the screen with the result window")
parser.add_argument("--iterations", type=int, default=10)
parser.add_argument("--keep-open", action="store_true")
args = parser.parse_args([] if "ipykernel" in sys.modules else None)

# %% 1. start ImageJ from Python
t0 = time.perf_counter()
runtime.start(heap="2g")
ij = runtime.imagej(show=True)  # the ImageJ 1.x main window (menus, toolbar)
IJ = runtime.jimport("ij.IJ")
print(f"ImageJ {IJ.getVersion()} started in {time.perf_counter() - t0:.1f} s")

# %% 2. a synthetic bead image in numpy, sent to ImageJ (numpy -> ImagePlus)
shape = (24, 64, 64)  # (z, y, x)
voxel = {"Z": 200.0, "Y": 65.0, "X": 65.0}  # nm
psf_params = dict(index=1.33, na=1.2, wavelength=520.0, spherical_aberration=0.0,
                  pixel_spacing=voxel["X"], slice_spacing=voxel["Z"],
                  width=shape[2], height=shape[1], depth=shape[0], normalization="sum")
rng = np.random.default_rng(7)
truth = np.zeros(shape, np.float32)
for _ in range(12):
    z, y, x = rng.integers(4, 20), rng.integers(8, 56), rng.integers(8, 56)
    truth[z, y, x] += 1000.0
psf_np = diffraction_psf_3d(**psf_params)
# circular convolution with the PSF (centred at n // 2), plus a little noise
otf = np.fft.rfftn(np.fft.ifftshift(psf_np))
blurred = np.fft.irfftn(np.fft.rfftn(truth) * otf, s=shape, axes=(0, 1, 2)) + rng.normal(0, 0.05, shape)
blurred = np.clip(blurred, 0, None).astype(np.float32)

cal = Calibration.make("ZYX", unit="nm", **voxel)
imp = convert.to_imageplus(blurred, cal, title="blurred")
imp.show()
c = imp.getCalibration()
print(f"numpy -> ImageJ: '{imp.getTitle()}' {imp.getWidth()}x{imp.getHeight()}x{imp.getNSlices()}, "
      f"{imp.getBitDepth()}-bit, voxel {c.pixelDepth:g} x {c.pixelHeight:g} x {c.pixelWidth:g} {c.getUnit()}")

# %% 3. run fijidecon commands in ImageJ, by macro, on ImageJ images
from fijidecon.fiji import commands  # noqa: E402  (ImageJ 1.x menu commands)

commands.install()
psf_cmd = get_command("diffraction-psf-3d")
dec_cmd = get_command("iterative-deconvolve-3d")
psf_opts = psf_cmd.to_macro({**psf_params, "title": "psf"})
dec_opts = dec_cmd.to_macro({"image": "blurred", "psf": "psf", "output": "deconvolved",
                             "max_iterations": args.iterations, "terminate": 0.0, "show": False})
macro = f'run("{psf_cmd.title}", "{psf_opts}");\nrun("{dec_cmd.title}", "{dec_opts}");\n'
print("macro:\n" + macro)
t0 = time.perf_counter()
res = commands.run_macro(macro)
if not res.ok:
    raise SystemExit(f"the macro failed: {res.error}")
WindowManager = runtime.jimport("ij.WindowManager")
result_title = f"deconvolved_{args.iterations}"
result = WindowManager.getImage(result_title)
if result is None:  # the title carries the iteration count actually run
    titles = [str(t) for t in WindowManager.getImageTitles()]
    result = WindowManager.getImage(next(t for t in titles if t.startswith("deconvolved")))
print(f"ran '{psf_cmd.title}' and '{dec_cmd.title}' in ImageJ in {time.perf_counter() - t0:.1f} s "
      f"-> '{result.getTitle()}'")

# %% 4. back to Python (ImagePlus -> numpy, and -> xarray)
decon, dcal = convert.from_imageplus(result)
psf_back, _ = convert.from_imageplus(WindowManager.getImage("psf"))
print(f"ImageJ -> numpy: {decon.shape} {decon.dtype}, axes {dcal.axes}, "
      f"voxel {dcal.voxel_size('ZYX')} {dcal.unit}")
print(f"PSF made in ImageJ equals the numpy PSF: {np.allclose(psf_back, psf_np, rtol=1e-5, atol=1e-9)}")


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# compare with the truth blurred by a narrow kernel (beads are points)
print(f"peak/mean: blurred {blurred.max() / blurred.mean():.1f}, deconvolved {decon.max() / decon.mean():.1f}")
print(f"correlation with the bead positions: blurred {corr(blurred, truth):.3f}, "
      f"deconvolved {corr(decon, truth):.3f}")
try:
    da = convert.from_imageplus_xarray(result)
    print(f"as xarray: dims {da.dims}, z step {float(da.z[1] - da.z[0]):g} {da.attrs['unit']}")
except ImportError:
    pass

# %% 5. ImgLib2: a view of numpy memory (no copy)
view = convert.to_img(decon)
ra = view.randomAccess()  # positioned at the origin (x, y, z) = (0, 0, 0)
decon[0, 0, 0] = -1.0  # write in numpy ...
print(f"ImgLib2 {list(view.dimensionsAsLongArray())} sees the numpy write: {ra.get().getRealDouble()}")

# %% 6. show the result: input, PSF and result side by side, zoomed 4x, middle slice
for k, win_imp in enumerate([imp, WindowManager.getImage("psf"), result]):
    win_imp.show()
    win_imp.setSlice(int(win_imp.getNSlices()) // 2 + 1)
    IJ.run(win_imp, "Enhance Contrast", "saturated=0.35")
    IJ.run(win_imp, "Set... ", "zoom=400")
    win_imp.getWindow().setLocation(20 + 300 * k, 140)
log_window = WindowManager.getWindow("Log")
if log_window is not None:
    log_window.setLocation(20, 480)
result.getWindow().toFront()
if args.screenshot:
    time.sleep(1.0)
    Robot = runtime.jimport("java.awt.Robot")
    Rectangle = runtime.jimport("java.awt.Rectangle")
    Toolkit = runtime.jimport("java.awt.Toolkit")
    ImageIO = runtime.jimport("javax.imageio.ImageIO")
    File = runtime.jimport("java.io.File")
    shot = Robot().createScreenCapture(Rectangle(Toolkit.getDefaultToolkit().getScreenSize()))
    ImageIO.write(shot, "png", File(args.screenshot))
    print(f"screenshot: {args.screenshot}")
if args.keep_open:
    input("Press Enter to quit ...")
print("done")
