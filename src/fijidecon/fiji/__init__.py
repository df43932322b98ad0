"""The Java side of fijidecon: ImageJ 1.x / SciJava / ImgLib2 through scyjava and JPype.

Importing this package starts nothing.  Sub-modules:

- :mod:`fijidecon.fiji.runtime`  -- start the JVM from pinned Maven Central artifacts,
  get the running ``ij.ImageJ``;
- :mod:`fijidecon.fiji.convert`  -- numpy / xarray <-> ``ImagePlus`` (with calibration),
  numpy <-> ImgLib2 ``Img`` (zero-copy numpy -> ImgLib2);
- :mod:`fijidecon.fiji.attach`   -- install fijidecon's commands into an existing
  pyimagej / SciJava gateway;
- :mod:`fijidecon.fiji.doctor`   -- checks behind ``fijidecon doctor``.

Example
-------
>>> from fijidecon.fiji import runtime, convert        # doctest: +SKIP
>>> runtime.start(heap="2g")                           # doctest: +SKIP
>>> imp = convert.to_imageplus(array, calibration)     # doctest: +SKIP
"""

__all__ = ["runtime", "convert", "attach", "doctor"]
