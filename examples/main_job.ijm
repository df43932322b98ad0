// fijidecon's main job, run through ImageJ 1.x: open a widefield stack and its PSF, deconvolve it with
// Richardson-Lucy (momentum acceleration, the best method of benchmarks/quality.py), save the result and show
// input, PSF, result (and the truth, when given) side by side in titled, non-overlapping windows.
//
//   fijidecon demo -o demo-output          # writes demo-output/sample.tif, psf.tif, truth.tif (synthetic)
//   fijidecon macro --show-imagej examples/main_job.ijm \
//       "input=demo-output/sample.tif psf=demo-output/psf.tif truth=demo-output/truth.tif outdir=demo-output/imagej"
//
// Arguments: input=<3-D TIFF> outdir=<folder> [psf=<3-D TIFF>] [truth=<3-D TIFF>] [iterations=30]
// [background=20] [screenshot=1] (use [brackets] around paths with spaces).
// Without psf=, a Diffraction PSF 3D is built for the image's voxel size (water immersion, NA 1.2, 520 nm: the
// optics of the bundled 40 x 36 x 12 toy sample, the default input of `fijidecon macro`).  screenshot=1 saves
// outdir/imagej_screen.png with "Capture Screen" (scripts/demo.sh takes it from Python instead).

arg = getArgument();
input = call("ij.Macro.getValue", arg, "input", "");
if (input == "") input = call("java.lang.System.getProperty", "fijidecon.sample");
outdir = call("ij.Macro.getValue", arg, "outdir", "fijidecon_main_job");
psfFile = call("ij.Macro.getValue", arg, "psf", "");
truthFile = call("ij.Macro.getValue", arg, "truth", "");
iterations = call("ij.Macro.getValue", arg, "iterations", "30");
background = call("ij.Macro.getValue", arg, "background", "");
shot = call("ij.Macro.getValue", arg, "screenshot", "1");
if (input == "" || input == "null")
    exit("usage: fijidecon macro main_job.ijm \"input=<stack.tif> outdir=<folder> [psf=<psf.tif>]\"");
File.makeDirectory(outdir);
if (!File.isDirectory(outdir))
    exit("cannot create the output folder " + outdir);

open(input);
rename("input");
getVoxelSize(dx, dy, dz, unit);
print("input: " + getWidth() + " x " + getHeight() + " x " + nSlices + ", voxel " + dx + " x " + dy + " x " + dz
      + " " + unit);
if (background == "") {            // no background given: the stack's minimum
    Stack.getStatistics(n, mean, min, max);
    background = d2s(min, 2);
}

t0 = getTime();
if (psfFile == "") {
    scale = 1;
    if (unit == "micron" || unit == "um" || unit == "µm" || unit == getInfo("micrometer.abbreviation")) scale = 1000;
    run("Diffraction PSF 3D", "index=1.33 numerical=1.2 wavelength=520 longitudinal=0 image=" + dx * scale
        + " slice=" + dz * scale + " width,=32 height,=32 depth,=16 normalization=[Sum of pixel values = 1] title=PSF");
} else {
    open(psfFile);
    rename("PSF");
}
run("Richardson-Lucy Deconvolution", "image=input psf=PSF iterations=" + iterations
    + " acceleration=[Momentum (scaled heavy-ball)] background=" + background + " title=deconvolved");
print("result: deconvolved, " + iterations + " iterations (momentum), background " + background + ", in "
      + (getTime() - t0) + " ms");
saveAs("Tiff", outdir + File.separator + "deconvolved.tif");
rename("deconvolved");
print("saved " + outdir + File.separator + "deconvolved.tif");
if (truthFile != "") {
    open(truthFile);
    rename("truth");
}
// maximum projections of input, result (and truth) and the PSF's centre plane, side by side, titled,
// the same size on screen, each with its own contrast; the stacks are closed (the result is saved)
stacks = newArray("input", "deconvolved");
if (truthFile != "") stacks = Array.concat(stacks, "truth");
names = newArray(stacks.length + 1);
for (i = 0; i < stacks.length; i++) {
    selectWindow(stacks[i]);
    run("Z Project...", "projection=[Max Intensity]");
    names[i + (i > 0)] = stacks[i] + " (max projection)";
    rename(names[i + (i > 0)]);
    selectWindow(stacks[i]);
    close();
}
selectWindow("PSF");
setSlice(floor(nSlices / 2) + 1);
getStatistics(area, mean, min, max);
setMinAndMax(0, max * 0.03);          // saturates the core: shows the rings and the halo
rename("PSF (centre plane)");
names[1] = "PSF (centre plane)";
// a 2 x 2 grid: input | result on top, PSF | truth below; integer zooms; the title drawn on each image
// (as an overlay: under Xvfb there is no window manager to draw title bars)
cellH = floor((screenHeight - 110) / 2);
cellW = cellH;
order = newArray(0, 2, 1, 3);
for (j = 0; j < names.length; j++) {
    i = order[j];
    selectWindow(names[i]);
    if (i != 1) resetMinAndMax();
    zoom = floor(minOf((cellW - 40) / getWidth(), (cellH - 45) / getHeight()));
    if (zoom < 1) zoom = 1;
    run("Set... ", "zoom=" + 100 * zoom);
    setFont("SansSerif", 15 / zoom, "bold antialiased");
    setColor("yellow");
    Overlay.drawString(names[i], 1, 1 + 16 / zoom);
    Overlay.show;
    setLocation(10 + (j % 2) * (cellW + 20), 110 + floor(j / 2) * (cellH + 5));
}
wait(1000);
if (shot == "1") {
    run("Capture Screen");
    saveAs("PNG", outdir + File.separator + "imagej_screen.png");
    close();
    print("saved " + outdir + File.separator + "imagej_screen.png");
}
