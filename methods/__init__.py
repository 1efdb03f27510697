"""Built-in methods. Each is registered through the ``promo_bench.methods`` entry-point group in
pyproject.toml, exactly as a third-party plugin would be; the harness never imports this package
directly."""
