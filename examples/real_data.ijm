// Real microscope files through fijidecon's ImageJ commands (ImageJ 1.x macro).
//
//   fijidecon macro examples/real_data.ijm "data=../shared/data/real outdir=real_data_out"
//
// Argument: data=<folder holding the real files> outdir=<folder> [iterations=10] [jobs=dapi,lls,rfi,beads]
// (use [brackets] around paths with spaces).  The files are those of ../shared/data/real (see its README):
//   dapi   deconwolf_demo/dapi_001.tif, (40, 201, 101) uint16, no calibration in the file: voxel 130 x 130 x 300 nm
//          set here; a Diffraction PSF 3D of the same size (NA 1.45, 461 nm, index 1.512); Richardson-Lucy, Wiener.
//   lls    pycudadecon_lls_psf/psf.tif, a raw light-sheet bead PSF (61 planes, background ~140, peak off-centre in y)
//          as the PSF of a 40-plane image of three points blurred with it (Convolve) on a background of 2;
//          Richardson-Lucy.
//   rfi    redlionfish_rfi_psf/PSF_RFI_8bit.tif (8-bit, 300 nm voxels) and gendata_psfconv_poiss.tif (160^3,
//          cropped here to 64^3 around the cube at 72, 72, 72); Richardson-Lucy, Wiener.
//   beads  boulanger_bead_psf/psf-gfp.tif, one raw 100 nm bead (65 x 65 x 200 nm voxels): PSF from Beads.
// What the commands did to each PSF (offset removed, re-centred, cropped, resampled) and Wiener's chosen
// regularization are written to the Log, which `fijidecon macro` prints.  Results are saved as TIFFs in outdir.

arg = getArgument();
data = call("ij.Macro.getValue", arg, "data", "");
outdir = call("ij.Macro.getValue", arg, "outdir", "real_data_out");
n = call("ij.Macro.getValue", arg, "iterations", "10");
jobs = "," + call("ij.Macro.getValue", arg, "jobs", "dapi,lls,rfi,beads") + ",";
if (data == "" || !File.isDirectory(data))
    exit("usage: fijidecon macro real_data.ijm \"data=<shared/data/real> outdir=<folder>\" (data=" + data + " is not a folder)");
File.makeDirectory(outdir);
if (!File.isDirectory(outdir))
    exit("cannot create the output folder " + outdir);
setBatchMode(true);

function save(title, name) {
    selectImage(title);
    getDimensions(w, h, c, z, t);
    getVoxelSize(dx, dy, dz, unit);
    Stack.getStatistics(count, mean, min, max);
    print("saved " + name + ": " + w + " x " + h + " x " + z + " (c " + c + ", t " + t + "), voxel " + dx + " x " + dy
          + " x " + dz + " " + unit + ", range " + min + " .. " + max);
    saveAs("Tiff", outdir + File.separator + name);
}

// -- dapi: a same-size diffraction PSF, the Imspector/ImageJ recipe -------------------------------------------
if (indexOf(jobs, ",dapi,") >= 0) {
    open(data + File.separator + "deconwolf_demo" + File.separator + "dapi_001.tif");
    dapi = getTitle();
    setVoxelSize(130, 130, 300, "nm");       // the file has no calibration
    run("Diffraction PSF 3D", "index=1.512 numerical=1.45 wavelength=461 longitudinal=0 image=130 slice=300"
        + " width,=101 height,=201 depth,=40 normalization=[Sum of pixel values = 1] title=PSF_dapi");
    // the camera offset (about 2100 counts) as RL's background: each volume's lowest local mean
    run("Richardson-Lucy Deconvolution", "image=[" + dapi + "] psf=PSF_dapi iterations=" + n
        + " background=auto title=RL_dapi");
    save("RL_dapi", "dapi_rl.tif");
    run("Wiener Deconvolution", "image=[" + dapi + "] psf=PSF_dapi title=Wiener_dapi");
    save("Wiener_dapi", "dapi_wiener.tif");
    run("Close All");
}

// -- lls: a raw light-sheet PSF deeper than the image (61 planes for 40) -------------------------------------
if (indexOf(jobs, ",lls,") >= 0) {
    open(data + File.separator + "pycudadecon_lls_psf" + File.separator + "psf.tif");
    psf = getTitle();
    setVoxelSize(0.1011, 0.1011, 0.1, "micron");
    newImage("points", "32-bit black", 96, 96, 40);
    setVoxelSize(0.1011, 0.1011, 0.1, "micron");
    setSlice(20); setPixel(48, 40, 1000);
    setSlice(12); setPixel(30, 70, 1000);
    setSlice(30); setPixel(70, 24, 1000);
    run("Convolve (FFT)", "image=points kernel=[" + psf + "] title=points_blurred");
    run("Add...", "value=2 stack");         // a camera-like background, given to Richardson-Lucy below
    save("points_blurred", "lls_blurred.tif");
    run("Richardson-Lucy Deconvolution", "image=[lls_blurred.tif] psf=[" + psf + "] iterations=" + n
        + " background=2 title=RL_lls");
    save("RL_lls", "lls_rl.tif");
    run("Close All");
}

// -- rfi: an 8-bit measured PSF and data made with it (cropped: the file is 160^3) ---------------------------
if (indexOf(jobs, ",rfi,") >= 0) {
    open(data + File.separator + "redlionfish_rfi_psf" + File.separator + "PSF_RFI_8bit.tif");
    psf = getTitle();
    getVoxelSize(dx, dy, dz, unit);
    open(data + File.separator + "redlionfish_rfi_psf" + File.separator + "gendata_psfconv_poiss.tif");
    makeRectangle(40, 40, 64, 64);
    run("Duplicate...", "title=gendata_crop duplicate range=41-104");
    setVoxelSize(dx, dy, dz, unit);           // the data were made on the PSF's grid
    run("Richardson-Lucy Deconvolution", "image=gendata_crop psf=[" + psf + "] iterations=" + n + " title=RL_rfi");
    save("RL_rfi", "rfi_rl.tif");
    run("Wiener Deconvolution", "image=gendata_crop psf=[" + psf + "] title=Wiener_rfi");
    save("Wiener_rfi", "rfi_wiener.tif");
    save("gendata_crop", "rfi_crop.tif");
    run("Close All");
}

// -- beads: a PSF from one raw bead image ---------------------------------------------------------------------
if (indexOf(jobs, ",beads,") >= 0) {
    open(data + File.separator + "boulanger_bead_psf" + File.separator + "psf-gfp.tif");
    beads = getTitle();
    setVoxelSize(65, 65, 200, "nm");
    run("PSF from Beads", "beads=[" + beads + "] width,=64 height,=64 depth,=24 title=PSF_gfp");
    save("PSF_gfp", "beads_psf.tif");
    run("Close All");
}
print("done");
