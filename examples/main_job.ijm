// fijidecon's main job, run through ImageJ 1.x:
// open an image, build a diffraction PSF, deconvolve, save the result and a screenshot.
//
//   fijidecon macro --show-imagej examples/main_job.ijm "input={sample} outdir=main_job_out"
//
// Argument: input=<3-D TIFF> outdir=<folder> (use [brackets] for paths with spaces).
// Defaults: the bundled sample (when run by `fijidecon macro`) and ./fijidecon_main_job.
// The PSF uses the image's voxel size; lengths are in nm (a micron-calibrated image is
// converted).  The optics (water immersion, NA 1.2, 520 nm emission) are those of the
// bundled sample; change them for your microscope.

arg = getArgument();
input = call("ij.Macro.getValue", arg, "input", call("java.lang.System.getProperty", "fijidecon.sample"));
outdir = call("ij.Macro.getValue", arg, "outdir", "fijidecon_main_job");
if (input == "" || input == "null")
    exit("usage: fijidecon macro main_job.ijm \"input=<stack.tif> outdir=<folder>\"");
File.makeDirectory(outdir);
if (!File.isDirectory(outdir))
    exit("cannot create the output folder " + outdir);

open(input);
image = getTitle();
getVoxelSize(dx, dy, dz, unit);
scale = 1;
if (unit == "micron" || unit == "um" || unit == "µm" || unit == getInfo("micrometer.abbreviation")) scale = 1000;
dx = dx * scale; dz = dz * scale;
print("input: " + image + ", " + getWidth() + " x " + getHeight() + " x " + nSlices + ", voxel " + dx + " x " + dy*scale + " x " + dz + " nm");

t0 = getTime();
run("Diffraction PSF 3D", "index=1.33 numerical=1.2 wavelength=520 longitudinal=0 image=" + dx + " slice=" + dz
    + " width,=32 height,=32 depth,=16 normalization=[Sum of pixel values = 1] title=PSF");
run("Iterative Deconvolve 3D", "image=[" + image + "] point=PSF output=Deconvolved normalize log perform detect"
    + " wiener=0 low=1 z_direction=1 maximum=100 terminate=0.01");
result = getTitle();
print("result: " + result + " in " + (getTime() - t0) + " ms");
saveAs("Tiff", outdir + File.separator + "deconvolved.tif");
print("saved " + outdir + File.separator + "deconvolved.tif");

// show the input, the PSF and the result side by side, enlarged, and take a screenshot
x = 10;
names = newArray(image, "PSF", "deconvolved.tif");
for (i = 0; i < names.length; i++) {
    selectWindow(names[i]);
    setSlice(floor(nSlices/2) + 1);
    resetMinAndMax();
    zoom = floor(360 / getWidth()) * 100;
    run("Set... ", "zoom=" + zoom);
    setLocation(x, 120);
    x = x + getWidth() * zoom / 100 + 40;
}
wait(800);
run("Capture Screen");
saveAs("PNG", outdir + File.separator + "imagej_screen.png");
close();
print("saved " + outdir + File.separator + "imagej_screen.png");
