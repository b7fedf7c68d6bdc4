"""Ray Tune search, promotion and reports. The only package that knows Ray."""
