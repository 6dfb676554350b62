//! Pure raster math: normalisations, colormaps, grids.
