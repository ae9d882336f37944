"""The search spaces shipped with hpo_prune (YAML files, one per model family, plus the
reference study's fixed grid). They install with the package and are found through
``importlib.resources``, so a wheel install finds them from any working directory."""
