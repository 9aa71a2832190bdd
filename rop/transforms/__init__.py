"""IR-to-IR transforms: the R-transform."""
