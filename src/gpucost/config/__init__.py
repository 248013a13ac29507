"""gpucost.toml and what the deploy reads from it: the settings of one deployment."""
