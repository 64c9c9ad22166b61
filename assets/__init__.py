"""Bundled demo scenes, trained weights and model cards (installed as the package
``nsv_assets``; ``engine.assets`` finds them)."""
