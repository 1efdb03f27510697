"""A promo-bench plugin template: copy this folder, rename the package, replace the method."""
